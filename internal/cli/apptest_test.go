package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

// startApp runs cfg in-process on 127.0.0.1:0 and returns the app and its
// base URL; it shuts down at cleanup. now, when not nil, is the clock of
// verification and ingest.
func startApp(t *testing.T, cfg *config.Config, now func() time.Time) (*App, string) {
	t.Helper()
	return startAppWith(t, cfg, func(a *App) { a.now = now })
}

// startAppWith is startApp with set changing the app before Open.
func startAppWith(t *testing.T, cfg *config.Config, set func(*App)) (*App, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	set(app)
	if err := app.Open(context.Background()); err != nil {
		t.Fatalf("open: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return app, "http://" + app.Addr()
}

// A configuration with destinations or subscriptions is refused with a
// clear reason, never run without the delivery it promises.
func TestOpenRefusesADestinationTheEgressGuardRefuses(t *testing.T) {
	cfg, err := config.Parse([]byte("destinations: [{name: internal, type: http, url: \"http://127.0.0.1:9/hooks\"}]\nsubscriptions: [{destination: internal}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err = app.Open(context.Background())
	if err == nil {
		app.Shutdown(context.Background())
		t.Fatal("Open: got nil, want the loopback destination refused")
	}
	if !strings.Contains(err.Error(), "destination internal") {
		t.Errorf("Open: got %v, want it to name the destination", err)
	}
	t.Logf("refused: %v", err)
}

// The web console is served by hookd serve, with its security headers.
func TestConsoleIsServed(t *testing.T) {
	cfg, err := config.Parse([]byte("admin: {tokens: [tok]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	for path, ctype := range map[string]string{"/console/": "text/html", "/console/app.js": "text/javascript"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("GET %s: %d %q, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
		}
	}
}
