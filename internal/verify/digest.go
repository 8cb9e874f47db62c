package verify

import (
	"hookd/internal/config"
)

// digest is a keyed hash without HMAC: a plain hash of a template that
// holds the secret, such as md5 over "{body}{secret}" (seed 003). It shares
// every option of hmac; signed is required and must contain {secret}.

func init() {
	Register("digest", newDigest)
}

func newDigest(env *Env, m config.Verify) (Verifier, error) {
	var o sigOptions
	if err := m.Decode(&o); err != nil {
		return nil, err
	}
	v, err := sigBuildMAC(env, "digest", &o)
	if err != nil {
		return nil, err
	}
	// A secret only at the front lets anyone who saw one signed request
	// append to its body and compute a valid digest (length extension of
	// md5 and the sha families).
	if n := len(v.tmpl); n > 0 && v.tmpl[0].kind == sigPartSecret && v.tmpl[n-1].kind != sigPartSecret && env != nil && env.Log != nil {
		env.Log.Warn("digest signs the secret only before the body; length extension lets a third party extend a signed body; prefer hmac or put {secret} last",
			"source", env.Source)
	}
	return v, nil
}
