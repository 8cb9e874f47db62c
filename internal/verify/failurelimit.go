package verify

import (
	"time"

	"hookd/internal/config"
)

// FailureLimiter limits failed authentications per remote address (an
// IPv6 address counts with its /64) the way the token endpoint does: a
// token bucket per address that each failure empties by one, at most
// maxAddrs addresses tracked, the least recently seen forgotten first.
// The admin API's sign-in (POST /api/v1/session) uses it.
type FailureLimiter struct {
	l   *issuerLimiter
	now func() time.Time
}

// NewFailureLimiter returns a limiter that lets burst failures through at
// once per address, then rate; now nil is time.Now.
func NewFailureLimiter(rate config.Rate, burst, maxAddrs int, now func() time.Time) *FailureLimiter {
	if now == nil {
		now = time.Now
	}
	return &FailureLimiter{l: newIssuerLimiter(config.OAuthIssuer{AddressFailures: rate, FailureBurst: burst, MaxAddresses: maxAddrs}), now: now}
}

// Admit admits one attempt from remote (a RemoteAddr). When the address's
// bucket is empty it returns false and how long until it admits again;
// the credentials must then not be checked. Otherwise done must be called
// with the outcome: a failure keeps the token taken.
func (f *FailureLimiter) Admit(remote string) (done func(failed bool), wait time.Duration, ok bool) {
	att, wait, ok := f.l.admit(f.now(), nil, remote)
	if !ok {
		return nil, wait, false
	}
	return func(failed bool) { f.l.done(att, nil, remote, f.now(), failed, !failed) }, 0, true
}
