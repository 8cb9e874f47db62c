package webhook

import (
	"context"
	"testing"

	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		sink := newSink(t, nil)
		d, err := destination.Open(context.Background(), Type, newClock(t0).env(),
			destinationtest.Options(map[string]any{"url": sink.URL + "/hook"}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, sink
	})
}
