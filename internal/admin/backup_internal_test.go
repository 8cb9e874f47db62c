package admin

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// A client that reads a backup slower than backupMinRate on average is
// cut once backupGrace has passed; one that keeps up is not.
func TestBackupWriterCutsASlowClient(t *testing.T) {
	clock := time.Unix(1_000_000, 0)
	var w discardWriter
	bw := &backupWriter{w: &w, rc: http.NewResponseController(&w), now: func() time.Time { return clock }}
	chunk := make([]byte, 64<<10)
	if _, err := bw.Write(chunk); err != nil {
		t.Fatal(err)
	}
	// Keeping up: a chunk per 100 ms is 640 KiB/s.
	for range 1200 {
		clock = clock.Add(100 * time.Millisecond)
		if _, err := bw.Write(chunk); err != nil {
			t.Fatalf("at %s, %d bytes sent: %v, want the write", clock.Sub(bw.start), bw.written, err)
		}
	}
	// Then a chunk a minute: the average falls below the minimum.
	var err error
	for range 100 {
		clock = clock.Add(time.Minute)
		if _, err = bw.Write(chunk); err != nil {
			break
		}
	}
	if !errors.Is(err, errBackupTooSlow) {
		t.Fatalf("a chunk a minute: got %v, want %v", err, errBackupTooSlow)
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
