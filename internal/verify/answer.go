package verify

import "hookd/internal/jsonlimit"

// answerDepth refuses the answer of a JWKS or introspection endpoint, or
// the header of a JWT, nested deeper than jsonlimit.DefaultDepth, before
// it is decoded. They have a known shape a few levels deep; their size is
// capped where they are read.
func answerDepth(body []byte) error {
	return jsonlimit.Check(body, jsonlimit.DefaultDepth)
}
