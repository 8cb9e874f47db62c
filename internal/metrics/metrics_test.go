package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A handler that panics is counted as the 500 the server's recovery will
// answer, and the panic goes on to that recovery.
func TestIngestCountsAPanicAs500(t *testing.T) {
	m := New("test")
	mux := http.NewServeMux()
	mux.Handle("/in/{source}", m.Ingest(func(s string) bool { return s == "a" }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("do") {
		case "panic":
			panic("boom")
		case "413":
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		}
	})))
	for _, q := range []string{"", "413", "panic"} {
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if v := recover(); (v != nil) != (q == "panic") {
					t.Errorf("do=%q: recovered %v", q, v)
				}
			}()
			mux.ServeHTTP(rec, httptest.NewRequest("POST", "/in/a?do="+q, strings.NewReader("{}")))
		}()
	}
	for code, want := range map[string]float64{"200": 1, "413": 1, "500": 1} {
		if got := testutil.ToFloat64(m.ingestRequests.WithLabelValues("a", code)); got != want {
			t.Errorf("code %s: %v, want %v", code, got, want)
		}
	}
}
