package webhook

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"hookd"
	"hookd/internal/config"
	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
	"hookd/internal/verify"
)

// With sign, every attempt carries a webhook-signature that hookd's own
// standard_webhooks verifier accepts with either secret of a rotation, on
// the id, timestamp and body the receiver got; webhook-id stays the event
// id across attempts while webhook-timestamp follows the clock.
func TestSignedDeliveryVerifies(t *testing.T) {
	t.Parallel()
	const oldSecret, newSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"
	sink := newSink(t, nil)
	clk := newClock(t0)
	d := openOpts(t, clk.env(), map[string]any{
		"url":  sink.URL,
		"sign": map[string]any{"type": "standard_webhooks", "secrets": []string{oldSecret, newSecret}},
	})
	ev := &hookd.Event{ID: "evt_01M80ZH4D7X76FJPYK9DWBJ546", Source: "app", Type: "order.paid", ContentType: "application/json", Body: []byte(`{"n":1}`)}
	for attempt := 1; attempt <= 2; attempt++ {
		clk.set(t0.Add(time.Duration(attempt) * time.Minute))
		if _, err := d.Deliver(context.Background(), &destination.Message{Event: ev, DeliveryID: "dlv_1", Attempt: attempt}); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	reqs := sink.requests()
	if len(reqs) != 2 {
		t.Fatalf("sink got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if got := r.Header.Get("webhook-id"); got != ev.ID {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, got, ev.ID)
		}
		at := t0.Add(time.Duration(i+1) * time.Minute)
		for _, secret := range []string{oldSecret, newSecret} {
			m, err := config.NewVerify("standard_webhooks", map[string]any{"secrets": []string{secret}})
			if err != nil {
				t.Fatal(err)
			}
			chain, err := verify.Build(&verify.Env{Source: "r", Now: func() time.Time { return at }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, []config.Verify{m})
			if err != nil {
				t.Fatal(err)
			}
			if err := chain.Verify(context.Background(), &verify.Request{Method: http.MethodPost, Header: r.Header, Body: r.Body}); err != nil {
				t.Errorf("attempt %d: a receiver holding one secret of the rotation refused: %v", i+1, err)
			}
		}
	}
}

// A static header may not replace a signing header: neither the default
// names (reserved by hookd) nor overridden ones.
func TestSignHeaderNotOverridable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		headers map[string]string
		sign    map[string]any
		want    string
	}{
		{"Default", map[string]string{"Webhook-Signature": "x"},
			map[string]any{"secrets": []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, "webhook-signature"},
		{"Override", map[string]string{"X-Sig": "x"},
			map[string]any{"secrets": []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "signature_header": "x-sig"}, "set by sign"},
	} {
		_, err := destination.Open(context.Background(), Type, newClock(t0).env(), destinationtest.Options(map[string]any{
			"url": "https://example.invalid/hook", "headers": tt.headers, "sign": tt.sign,
		}))
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}
