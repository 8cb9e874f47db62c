package httpserver

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAddressKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.7:4711", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::9", "2001:db8:1:2::/64"},
		{"not an address", "not an address"},
	} {
		if got := AddressKey(tt.in); got != tt.want {
			t.Errorf("AddressKey(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A body is counted as its bytes are read, in all and per address, and
// given back when the request ends; bytes that do not fit are refused with
// 503 and the connection is closed.
func TestBodyBudget(t *testing.T) {
	t.Parallel()
	b := NewBodyBudget(300<<10, 200<<10)
	var held int64
	h := b.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		held, _ = b.Used(r.RemoteAddr)
		if err != nil {
			(&Errors{Log: slog.New(slog.DiscardHandler)}).Write(w, r, BodyReadError(err))
		}
	}))
	post := func(remote string, n int) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/in/s", bytes.NewReader(make([]byte, n)))
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := post("192.0.2.1:1", 150<<10); w.Code != http.StatusOK || held != 150<<10 {
		t.Errorf("150 KiB: got %d holding %d bytes, want 200 holding %d", w.Code, held, 150<<10)
	}
	if all, _ := b.Used("192.0.2.1:1"); all != 0 {
		t.Errorf("after the request: got %d bytes held, want 0", all)
	}
	w := post("192.0.2.1:1", 250<<10)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || w.Header().Get("Connection") != "close" {
		t.Errorf("250 KiB from one address: got %d, Retry-After %q, Connection %q; want 503, a Retry-After and close", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Connection"))
	}
	// Another request holds its share meanwhile: the whole budget is
	// 300 KiB.
	other := AddressKey("192.0.2.9:1")
	if !b.reserve(other, 200<<10) {
		t.Fatal("reserve 200 KiB: refused")
	}
	if w := post("[2001:db8::1]:1", 150<<10); w.Code != http.StatusServiceUnavailable {
		t.Errorf("150 KiB with 200 KiB of 300 held: got %d, want 503", w.Code)
	}
	if w := post("[2001:db8::2]:1", 50<<10); w.Code != http.StatusOK {
		t.Errorf("50 KiB with 200 KiB of 300 held: got %d, want 200", w.Code)
	}
	b.release(other, 200<<10)
	if all, _ := b.Used(""); all != 0 || len(b.byAddr) != 0 {
		t.Errorf("after every request: got %d bytes and %d addresses held, want none", all, len(b.byAddr))
	}
	if !errors.Is(BodyReadError(errBodyMemory), errBodyMemory) {
		t.Errorf("BodyReadError does not wrap the budget's error")
	}
}
