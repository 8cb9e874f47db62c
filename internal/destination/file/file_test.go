package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hookd"
	"hookd/internal/destination"
	"hookd/internal/destination/destinationtest"
)

// fileSink reads back the records of a jsonl file.
type fileSink struct{ path string }

func (s fileSink) Received(t *testing.T) []destinationtest.Received {
	t.Helper()
	var out []destinationtest.Received
	for _, r := range readRecords(t, s.path) {
		body, err := base64.StdEncoding.DecodeString(r.BodyBase64)
		if err != nil {
			t.Fatalf("record %s: body_base64: %v", r.ID, err)
		}
		out = append(out, destinationtest.Received{EventID: r.ID, Body: body})
	}
	return out
}

// readRecords parses every line of a jsonl file, failing on a line that is
// not one whole record.
func readRecords(t *testing.T, path string) []jsonRecord {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	var out []jsonRecord
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 8<<20)
	for n := 1; sc.Scan(); n++ {
		var r jsonRecord
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s line %d is not a record: %v: %.200q", path, n, err, sc.Bytes())
		}
		if dec.More() {
			t.Fatalf("%s line %d holds more than one record", path, n)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scan %s: %v", path, err)
	}
	return out
}

func openOpts(t *testing.T, env *destination.Env, opts map[string]any) *Destination {
	t.Helper()
	d, err := destination.Open(context.Background(), Type, env, destinationtest.Options(opts))
	if err != nil {
		t.Fatalf("Open(%v): %v", opts, err)
	}
	t.Cleanup(func() { d.Close() })
	return d.(*Destination)
}

func deliver(t *testing.T, d destination.Destination, m *destination.Message) {
	t.Helper()
	res := destinationtest.Deliver(t, d, m)
	if res.StatusCode != 0 || len(res.ResponseExcerpt) != 0 {
		t.Errorf("Deliver: result %+v, want the zero Result", res)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	destinationtest.Run(t, func(t *testing.T) (destination.Destination, destinationtest.Sink) {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		d, err := destination.Open(context.Background(), Type, nil,
			destinationtest.Options(map[string]any{"path": path}))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return d, fileSink{path}
	})
}

func TestRegistered(t *testing.T) {
	if !slices.Contains(destination.Types(), Type) {
		t.Errorf("destination.Types() = %v, want it to contain %q", destination.Types(), Type)
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name string
		opts map[string]any
		want string // prefix of the error
		has  string // also in the error
	}{
		{"NoPath", map[string]any{}, "path: required", ""},
		{"BlankPath", map[string]any{"path": "  "}, "path: required", ""},
		{"RelativePath", map[string]any{"path": "events.jsonl"}, "path: ", "not absolute"},
		{"DotRelativePath", map[string]any{"path": "./out/events.jsonl"}, "path: ", "not absolute"},
		{"MissingDirectory", map[string]any{"path": filepath.Join(missing, "events.jsonl")}, "path: ", missing},
		{"ParentIsAFile", map[string]any{"path": filepath.Join(notDir, "events.jsonl")}, "path: ", notDir},
		{"PathIsADirectory", map[string]any{"path": dir}, "path: ", "not a regular file"},
		{"TrailingSlash", map[string]any{"path": dir + "/events/"}, "path: ", "directory"},
		{"UnknownFormat", map[string]any{"path": filepath.Join(dir, "x"), "format": "csv"}, "format: ", "jsonl or raw"},
		{"FormatCase", map[string]any{"path": filepath.Join(dir, "x"), "format": "JSONL"}, "format: ", "jsonl or raw"},
		{"UnknownKey", map[string]any{"path": filepath.Join(dir, "x"), "mode": "0644"}, "", "mode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := destination.Open(context.Background(), Type, nil, destinationtest.Options(c.opts))
			if err == nil {
				d.Close()
				t.Fatalf("Open(%v): got nil error, want one starting %q", c.opts, c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) || !strings.Contains(err.Error(), c.has) {
				t.Errorf("Open(%v): got %q, want it to start with %q and contain %q", c.opts, err, c.want, c.has)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a missing directory was created: %v", err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, format := range []string{"", FormatJSONL, FormatRaw} {
		path := filepath.Join(dir, "f-"+format)
		opts := map[string]any{"path": path}
		if format != "" {
			opts["format"] = format
		}
		d := openOpts(t, nil, opts)
		want := format
		if want == "" {
			want = FormatJSONL
		}
		if d.s.format != want {
			t.Errorf("format %q: got %q, want %q", format, d.s.format, want)
		}
	}
}

func TestCreatesFileWithMode0600(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	openOpts(t, nil, map[string]any{"path": path})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the file was not created at open: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode: got %v, want 0600", perm)
	}
}

func TestAppendsToExistingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := openOpts(t, nil, map[string]any{"path": path, "format": "raw"})
	deliver(t, d, destinationtest.NewMessage([]byte("after"), "text/plain"))
	got, _ := os.ReadFile(path)
	if string(got) != "before\nafter\n" {
		t.Errorf("file: got %q, want %q", got, "before\nafter\n")
	}
}

// testMessage is a message with every field set.
func testMessage() *destination.Message {
	return &destination.Message{
		Event: &hookd.Event{
			Seq:         42,
			ID:          "evt_01J0000000000000000000000A",
			Source:      "stripe",
			ExternalID:  "ext_1",
			Type:        "invoice.paid.v1",
			Key:         "cus_9",
			OccurredAt:  time.Date(2024, 5, 6, 9, 8, 7, 123456789, time.FixedZone("CEST", 2*3600)),
			ReceivedAt:  time.Date(2024, 5, 6, 7, 8, 9, 500, time.FixedZone("X", -3600)),
			RequestID:   "req_01J0000000000000000000000A",
			ContentType: "application/json; charset=utf-8",
			Headers:     map[string][]string{"X-Secret": {"not written"}},
			Body:        []byte("{\"a\":\"<b>&é\",\"n\":1}\n"),
		},
		DeliveryID: "dlv_01J0000000000000000000000B",
		Attempt:    3,
	}
}

func TestJSONLRecordShape(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := openOpts(t, nil, map[string]any{"path": path})
	m := testMessage()
	deliver(t, d, m)

	want := `{"id":"evt_01J0000000000000000000000A","source":"stripe","type":"invoice.paid.v1","key":"cus_9",` +
		`"occurred_at":"2024-05-06T07:08:07.123456789Z","received_at":"2024-05-06T08:08:09.0000005Z",` +
		`"delivery_id":"dlv_01J0000000000000000000000B","attempt":3,"content_type":"application/json; charset=utf-8",` +
		`"body":"{\"a\":\"<b>&é\",\"n\":1}\n","body_base64":"` + base64.StdEncoding.EncodeToString(m.Event.Body) + `"}` + "\n"
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("record:\n got %s\nwant %s", got, want)
	}
}

func TestJSONLOmitsOptionalKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := openOpts(t, nil, map[string]any{"path": path, "format": "jsonl"})
	bodies := [][]byte{[]byte("\xff\xfe bad utf-8"), {}}
	for _, body := range bodies {
		m := testMessage()
		m.Event.Key = ""
		m.Event.OccurredAt = time.Time{}
		m.Event.Body = body
		deliver(t, d, m)
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), raw)
	}
	for i, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		for _, k := range []string{"key", "occurred_at"} {
			if _, ok := obj[k]; ok {
				t.Errorf("line %d: has %q, want it omitted: %s", i+1, k, line)
			}
		}
		wantB64 := base64.StdEncoding.EncodeToString(bodies[i])
		if obj["body_base64"] != wantB64 {
			t.Errorf("line %d: body_base64 %v, want %q", i+1, obj["body_base64"], wantB64)
		}
	}
	var invalid, empty map[string]any
	json.Unmarshal([]byte(lines[0]), &invalid)
	json.Unmarshal([]byte(lines[1]), &empty)
	if _, ok := invalid["body"]; ok {
		t.Errorf("invalid UTF-8 body: has \"body\", want only body_base64: %s", lines[0])
	}
	if b, ok := empty["body"]; !ok || b != "" {
		t.Errorf("empty body: \"body\" is %v (present %v), want \"\"", b, ok)
	}
}

func TestRawFormat(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.log")
	d := openOpts(t, nil, map[string]any{"path": path, "format": "raw"})
	bodies := []string{`{"a":1}`, "", "two\nlines", "\xff\x00bin"}
	for _, b := range bodies {
		deliver(t, d, destinationtest.NewMessage([]byte(b), "text/plain"))
	}
	want := strings.Join(bodies, "\n") + "\n"
	got, _ := os.ReadFile(path)
	if string(got) != want {
		t.Errorf("file: got %q, want %q", got, want)
	}
}

func TestConcurrentDeliversWriteWholeLines(t *testing.T) {
	t.Parallel()
	for _, format := range []string{FormatJSONL, FormatRaw} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "events")
			d := openOpts(t, nil, map[string]any{"path": path, "format": format})
			const workers, each = 24, 25
			var wg sync.WaitGroup
			sent := make(chan string, workers*each)
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						// Some bodies are larger than a pipe buffer or a page.
						n := (w + i) % 5 * 300
						if i == 0 {
							n = 70000
						}
						pad := strings.Repeat(string(rune('a'+w%26)), n)
						body := fmt.Sprintf(`{"w":%d,"i":%d,"pad":%q}`, w, i, pad)
						m := destinationtest.NewMessage([]byte(body), "application/json")
						if _, err := d.Deliver(context.Background(), m); err != nil {
							t.Errorf("Deliver: %v", err)
							return
						}
						sent <- body
					}
				})
			}
			wg.Wait()
			close(sent)
			want := map[string]int{}
			for b := range sent {
				want[b]++
			}
			got := map[string]int{}
			if format == FormatJSONL {
				for _, r := range readRecords(t, path) {
					if r.Body == nil {
						t.Fatalf("record %s has no body", r.ID)
					}
					b64, _ := base64.StdEncoding.DecodeString(r.BodyBase64)
					if string(b64) != *r.Body {
						t.Errorf("record %s: body and body_base64 differ", r.ID)
					}
					got[*r.Body]++
				}
			} else {
				raw, _ := os.ReadFile(path)
				for line := range strings.SplitSeq(strings.TrimSuffix(string(raw), "\n"), "\n") {
					if !json.Valid([]byte(line)) {
						t.Fatalf("line is not one whole body: %.200q", line)
					}
					got[line]++
				}
			}
			if len(got) != len(want) {
				t.Errorf("got %d distinct records, want %d", len(got), len(want))
			}
			for b, n := range want {
				if got[b] != n {
					t.Errorf("body %.40q: written %d times, want %d", b, got[b], n)
				}
			}
		})
	}
}

func TestDurableWhenDeliverReturns(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := openOpts(t, nil, map[string]any{"path": path})
	for i := range 5 {
		m := destinationtest.NewMessage(fmt.Appendf(nil, "n=%d", i), "text/plain")
		deliver(t, d, m)
		// A fresh read, by another file descriptor, sees the record at once.
		recs := readRecords(t, path)
		if len(recs) != i+1 || recs[i].ID != m.Event.ID {
			t.Fatalf("after Deliver %d: file holds %d records, want %d ending with %s", i+1, len(recs), i+1, m.Event.ID)
		}
	}
}

func TestDeliverAfterClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := openOpts(t, nil, map[string]any{"path": path})
	deliver(t, d, destinationtest.NewMessage([]byte("x"), "text/plain"))
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before, _ := os.ReadFile(path)
	_, err := d.Deliver(context.Background(), destinationtest.NewMessage([]byte("y"), "text/plain"))
	if err == nil {
		t.Fatal("Deliver after Close: got nil error")
	}
	if destination.IsPermanent(err) || destination.IsGone(err) || !strings.HasPrefix(err.Error(), "file: ") {
		t.Errorf("Deliver after Close: got %v, want a plain error starting with \"file: \"", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("Deliver after Close wrote to the file")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseWaitsForDeliveries(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := openOpts(t, nil, map[string]any{"path": path})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]bool{}
	for range 16 {
		wg.Go(func() {
			for range 10 {
				m := destinationtest.NewMessage([]byte("x"), "text/plain")
				if _, err := d.Deliver(context.Background(), m); err == nil {
					mu.Lock()
					ok[m.Event.ID] = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(time.Millisecond)
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	written := map[string]bool{}
	for _, r := range readRecords(t, path) {
		written[r.ID] = true
	}
	for id := range ok {
		if !written[id] {
			t.Errorf("event %s: Deliver returned nil but it is not in the file", id)
		}
	}
}

func TestDoneContextWritesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := openOpts(t, nil, map[string]any{"path": path})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Deliver(ctx, destinationtest.NewMessage([]byte("x"), "text/plain")); err == nil {
		t.Fatal("Deliver on a cancelled context: got nil error")
	}
	if raw, _ := os.ReadFile(path); len(raw) != 0 {
		t.Errorf("Deliver on a cancelled context wrote %q", raw)
	}
}

func TestWriteErrorIsRetriable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := openOpts(t, nil, map[string]any{"path": path})
	// Swap in a descriptor that cannot be written to.
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	good := d.f
	d.f = ro
	_, err = d.Deliver(context.Background(), destinationtest.NewMessage([]byte("x"), "text/plain"))
	d.f = good
	ro.Close()
	if err == nil {
		t.Fatal("Deliver with a failing write: got nil error")
	}
	if destination.IsPermanent(err) || destination.IsGone(err) || !strings.HasPrefix(err.Error(), "file: write ") {
		t.Errorf("Deliver with a failing write: got %v, want a plain error starting with \"file: write \"", err)
	}
	// The destination keeps working once writing works again.
	deliver(t, d, destinationtest.NewMessage([]byte("y"), "text/plain"))
	if recs := readRecords(t, path); len(recs) != 1 {
		t.Errorf("file holds %d records, want 1", len(recs))
	}
}

// clock is a settable clock for Env.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func idsIn(t *testing.T, path string) []string {
	t.Helper()
	var ids []string
	for _, r := range readRecords(t, path) {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestReopenAfterRename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	rotated := filepath.Join(dir, "events.jsonl.1")
	c := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := openOpts(t, &destination.Env{Name: "f", Now: c.now}, map[string]any{"path": path})

	m1 := destinationtest.NewMessage([]byte("1"), "text/plain")
	deliver(t, d, m1)
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	// Within a second of the last check, records still go to the open
	// (renamed) file.
	c.add(reopenInterval / 2)
	m2 := destinationtest.NewMessage([]byte("2"), "text/plain")
	deliver(t, d, m2)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("path was recreated before the check interval: %v", err)
	}
	// Past it, the destination notices and writes to a new file at path.
	c.add(reopenInterval)
	m3 := destinationtest.NewMessage([]byte("3"), "text/plain")
	deliver(t, d, m3)
	m4 := destinationtest.NewMessage([]byte("4"), "text/plain")
	deliver(t, d, m4)

	if got, want := idsIn(t, rotated), []string{m1.Event.ID, m2.Event.ID}; !slices.Equal(got, want) {
		t.Errorf("rotated file: got %v, want %v", got, want)
	}
	if got, want := idsIn(t, path), []string{m3.Event.ID, m4.Event.ID}; !slices.Equal(got, want) {
		t.Errorf("new file: got %v, want %v", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
}

func TestReopenAfterReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	c := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := openOpts(t, &destination.Env{Now: c.now}, map[string]any{"path": path, "format": "raw"})
	deliver(t, d, destinationtest.NewMessage([]byte("old"), "text/plain"))

	// Removed, and another file created at path by the rotation tool.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("header\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.add(2 * reopenInterval)
	deliver(t, d, destinationtest.NewMessage([]byte("new"), "text/plain"))
	if got, _ := os.ReadFile(path); string(got) != "header\nnew\n" {
		t.Errorf("file: got %q, want %q", got, "header\nnew\n")
	}
}

func TestReopenFailureIsRetriable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	c := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := openOpts(t, &destination.Env{Now: c.now}, map[string]any{"path": path})
	deliver(t, d, destinationtest.NewMessage([]byte("1"), "text/plain"))

	// The whole directory goes: the open file is unreachable, so writing
	// to it would lose the record.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	c.add(2 * reopenInterval)
	_, err := d.Deliver(context.Background(), destinationtest.NewMessage([]byte("2"), "text/plain"))
	if err == nil || destination.IsPermanent(err) || !strings.HasPrefix(err.Error(), "file: reopen ") {
		t.Fatalf("Deliver with the directory gone: got %v, want a plain error starting with \"file: reopen \"", err)
	}
	// Checked again on the very next delivery, which succeeds once the
	// directory is back.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := destinationtest.NewMessage([]byte("3"), "text/plain")
	deliver(t, d, m)
	if got := idsIn(t, path); !slices.Equal(got, []string{m.Event.ID}) {
		t.Errorf("file: got %v, want [%s]", got, m.Event.ID)
	}
}

// BenchmarkDeliverParallel measures deliveries of small records from many
// goroutines, where grouping fsyncs matters.
func BenchmarkDeliverParallel(b *testing.B) {
	path := filepath.Join(b.TempDir(), "events.jsonl")
	d, err := New(nil, Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		m := destinationtest.NewMessage([]byte(`{"hello":"world"}`), "application/json")
		for pb.Next() {
			if _, err := d.Deliver(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
