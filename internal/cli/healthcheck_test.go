package cli

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hookd/internal/config"
)

func TestHealthURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ listen, scheme, want string }{
		{":8080", "http", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9000", "http", "http://127.0.0.1:9000/healthz"},
		{"[::]:9000", "https", "https://[::1]:9000/healthz"},
		{"10.1.2.3:8080", "http", "http://10.1.2.3:8080/healthz"},
		{"hookd.internal:80", "http", "http://hookd.internal:80/healthz"},
	} {
		got, err := healthURL(tc.listen, tc.scheme)
		if err != nil || got != tc.want {
			t.Errorf("healthURL(%q, %q): got %q, %v, want %q", tc.listen, tc.scheme, got, err, tc.want)
		}
	}
	if _, err := healthURL("8080", "http"); err == nil {
		t.Error(`healthURL("8080"): got no error, want one (no port separator)`)
	}
}

func healthcheck(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(append([]string{"healthcheck"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// hookd healthcheck exits 0 against a running hookd, found by --url or
// through HOOKD_LISTEN, as the container's HEALTHCHECK runs it.
func TestHealthcheckAgainstARunningHookd(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	app, base := startApp(t, cfg, nil)
	if code, out, errOut := healthcheck("--url", base+"/healthz"); code != 0 || !strings.Contains(out, "200") {
		t.Errorf("healthcheck --url: got exit %d, stdout %q, stderr %q, want 0 and the 200", code, out, errOut)
	}
	_, port, _ := net.SplitHostPort(app.Addr())
	t.Setenv("HOOKD_LISTEN", ":"+port)
	if code, _, errOut := healthcheck(); code != 0 {
		t.Errorf("healthcheck with HOOKD_LISTEN=:%s: got exit %d, stderr %q, want 0", port, code, errOut)
	}
	// --config: the file's listen wins over HOOKD_LISTEN's absence, as
	// hookd serve -c reads it.
	t.Setenv("HOOKD_LISTEN", "")
	file := filepath.Join(t.TempDir(), "hookd.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:"+port+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := healthcheck("--config", file); code != 0 || !strings.Contains(out, "127.0.0.1:"+port) {
		t.Errorf("healthcheck --config (listen :%s): got exit %d, stdout %q, stderr %q, want 0", port, code, out, errOut)
	}
	if code, _, errOut := healthcheck("--config", filepath.Join(t.TempDir(), "absent.yaml")); code != 1 || !strings.Contains(errOut, "absent.yaml") {
		t.Errorf("healthcheck --config with a missing file: got exit %d, stderr %q, want 1 naming the file", code, errOut)
	}
}

// Anything but a 200 within the timeout is unhealthy: exit 1 with the
// reason.
func TestHealthcheckFailures(t *testing.T) {
	t.Parallel()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, unavailable.URL, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"Status503", []string{"--url", unavailable.URL + "/healthz"}, "503"},
		{"RedirectNotFollowed", []string{"--url", redirect.URL + "/healthz"}, "302"},
		{"NoAnswerWithinTimeout", []string{"--url", slow.URL + "/healthz", "--timeout", "200ms"}, "deadline exceeded"},
		{"NothingListening", []string{"--url", closedURL + "/healthz"}, "refused"},
		{"NotAURL", []string{"--url", "127.0.0.1:8080/healthz"}, "invalid --url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := healthcheck(tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("healthcheck %v: got exit %d, stderr %q, want 1 and %q", tc.args, code, errOut, tc.want)
			}
		})
	}
}
