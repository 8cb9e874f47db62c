package cli

import (
	"context"
	"io"
	"log/slog"
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

// A configuration with destinations or subscriptions is refused with a
// clear reason, never run without the delivery it promises.
func TestOpenRefusesDeliveryForNow(t *testing.T) {
	cfg, err := config.Parse([]byte("destinations: [{name: d, type: http, url: \"https://example.invalid/\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	app := NewApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err = app.Open(context.Background())
	if err == nil {
		app.Shutdown(context.Background())
		t.Fatal("Open: got nil, want an error about delivery")
	}
	if !strings.Contains(err.Error(), "not available in this build") {
		t.Errorf("Open: got %v, want it to say delivery is not available", err)
	}
}
