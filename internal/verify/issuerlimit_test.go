package verify

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"hookd/internal/config"
)

// A flood of addresses costs bounded memory: the table of addresses keeps
// at most max_addresses, forgetting the least recently seen.
func TestIssuerLimiterBoundsItsAddresses(t *testing.T) {
	t.Parallel()
	l := newIssuerLimiter(config.OAuthIssuer{MaxAddresses: 100, FailureBurst: 2})
	now := issuerT0
	for n := range 5000 {
		a, _, ok := l.admit(now, nil, fmt.Sprintf("10.%d.%d.%d:1", n>>16&255, n>>8&255, n&255))
		if !ok {
			t.Fatalf("address %d: refused at its first attempt", n)
		}
		l.done(a, nil, "", now, true, false)
	}
	if got := l.addrCount(); got != 100 {
		t.Errorf("addresses tracked after 5000: got %d, want 100", got)
	}
}

// The limits come from the configuration.
func TestIssuerLimitsAreConfigurable(t *testing.T) {
	t.Parallel()
	clock := &issuerTestClock{t: issuerT0}
	e := issuerTestOpen(t, t.TempDir(), clock, issuerTestSources(t), nil)
	e.iss.limit = newIssuerLimiter(config.OAuthIssuer{
		ClientFailures: config.Rate{N: 1000, Per: time.Second}, AddressFailures: config.Rate{N: 1, Per: time.Hour}, FailureBurst: 1,
	})
	codes := []int{}
	for range 3 {
		w := httptest.NewRecorder()
		e.iss.ServeHTTP(w, issuerTestFrom("192.0.2.7:1", "provider-a", "wrong"))
		codes = append(codes, w.Code)
	}
	if codes[0] != http.StatusUnauthorized || codes[1] != http.StatusTooManyRequests || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("burst 1, 1/h: got %v, want [401 429 429]", codes)
	}
	w := httptest.NewRecorder()
	e.iss.ServeHTTP(w, issuerTestFrom("192.0.2.7:1", "provider-a", "wrong"))
	if ra := w.Header().Get("Retry-After"); ra != "3600" {
		t.Errorf("Retry-After at 1/h: got %q, want 3600", ra)
	}
}
