package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"hookd/internal/config"
)

// A configured file destination and a configured exec destination receive
// what the sources got: the file has one JSON line per event, the command
// ran once per event with the body on stdin; a command that fails is
// retried like any other destination.
func TestFileAndExecDestinations(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	seen := filepath.Join(dir, "seen")
	if err := os.Mkdir(seen, 0o700); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "handle.sh")
	// Fails the first time it sees an event, succeeds the second.
	os.WriteFile(script, []byte(`#!/bin/sh
f="$SEEN/$HOOKD_EVENT_ID"
if [ ! -e "$f.tried" ]; then : > "$f.tried"; echo "not yet" >&2; exit 3; fi
cat > "$f.part" && mv "$f.part" "$f.body"
`), 0o700)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin: {tokens: [tok]}
sources:
  - {name: shop, event: {id: "json:id", type: "json:type"}}
destinations:
  - {name: log, type: file, path: %q}
  - {name: handler, type: exec, command: ["/bin/sh", %q], env: {SEEN: %q}, timeout: 10s,
     retry: {policy: schedule, schedule: ["10ms", "10ms"]}}
subscriptions:
  - {source: shop, destination: log}
  - {source: shop, destination: handler, events: ["order.*"]}
`, out, script, seen)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = filepath.Join(dir, "data")
	_, base := startApp(t, cfg, nil)
	ids := []string{
		postEvent(t, base, "shop", `{"id":"1","type":"order.paid"}`),
		postEvent(t, base, "shop", `{"id":"2","type":"user.created"}`),
	}
	waitFor(t, 10*time.Second, "both events in the file and the order at the handler", func() bool {
		_, err := os.Stat(filepath.Join(seen, ids[0]+".body"))
		b, _ := os.ReadFile(out)
		return err == nil && strings.Count(string(b), "\n") == 2
	})
	f, _ := os.Open(out)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var got []string
	for sc.Scan() {
		var rec struct{ ID, Type, Body string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("file line %q: %v", sc.Text(), err)
		}
		got = append(got, rec.ID+" "+rec.Type+" "+rec.Body)
	}
	// Concurrent attempts: the lines may come in either order.
	sort.Strings(got)
	want := ids[0] + ` order.paid {"id":"1","type":"order.paid"}` + "|" + ids[1] + ` user.created {"id":"2","type":"user.created"}`
	if strings.Join(got, "|") != want {
		t.Fatalf("file records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.ReplaceAll(want, "|", "\n"))
	}
	if b, _ := os.ReadFile(filepath.Join(seen, ids[0]+".body")); string(b) != `{"id":"1","type":"order.paid"}` {
		t.Fatalf("the command's stdin: %q", b)
	}
	if _, err := os.Stat(filepath.Join(seen, ids[1]+".tried")); err == nil {
		t.Fatal("the handler ran for user.created, which its subscription does not match")
	}
	// The first run failed (exit 3) and was retried: the attempt log shows it.
	waitFor(t, 5*time.Second, "the handler's delivery to succeed", func() bool {
		_, ev := apiDo(t, "GET", base+"/api/v1/events/"+ids[0], "tok", "")
		for _, d := range ev["deliveries"].([]any) {
			dm := d.(map[string]any)
			if dm["destination"] == "handler" && dm["status"] == "succeeded" {
				atts := dm["attempts"].([]any)
				first := atts[0].(map[string]any)
				return len(atts) == 2 && strings.Contains(fmt.Sprint(first["error"]), "exit status 3: not yet")
			}
		}
		return false
	})
}
