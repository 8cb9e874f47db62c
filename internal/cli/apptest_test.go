package cli

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"hookd/internal/config"
)

// startApp runs cfg in-process on 127.0.0.1:0 and returns the app and its
// base URL; it shuts down at cleanup. now, when not nil, is the clock of
// verification and ingest.
func startApp(t *testing.T, cfg *config.Config, now func() time.Time) (*App, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	app.now = now
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
