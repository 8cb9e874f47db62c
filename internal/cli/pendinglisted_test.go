package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"hookd/internal/config"
)

// A delivery is listed, pending, as soon as its event's ingest is
// answered, while its first attempt is still under way: the destination
// holds every request until the test releases it.
func TestDeliveryListedPendingWhileItsFirstAttemptBlocks(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			held := make(chan struct{})
			arrived := make(chan struct{}, 16)
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				arrived <- struct{}{}
				<-held
			}))
			t.Cleanup(sink.Close)
			storage := fmt.Sprintf("storage: {path: %q}", t.TempDir())
			if driver == "postgres" {
				storage = fmt.Sprintf("storage: {driver: postgres, dsn: %q}", testPostgresDSN(t))
			}
			cfg, err := config.Parse([]byte(fmt.Sprintf(`admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
%s
sources: [{name: shop, event: {id: "json:id", type: "json:type"}}]
destinations: [{name: slow, type: http, url: %q}]
subscriptions: [{source: shop, destination: slow}]
`, storage, sink.URL)))
			if err != nil {
				t.Fatal(err)
			}
			_, base := startApp(t, cfg, nil)
			var once sync.Once
			release := func() { once.Do(func() { close(held) }) }
			t.Cleanup(release) // before the app's shutdown

			id := postEvent(t, base, "shop", `{"id": "o-1", "type": "order.paid"}`)
			// check asserts the delivery is listed with a status in ok,
			// by the listing, the event and the delivery's own view.
			check := func(when string, ok ...string) {
				t.Helper()
				is := func(s any) bool {
					for _, o := range ok {
						if s == o {
							return true
						}
					}
					return false
				}
				code, list := apiDo(t, "GET", base+"/api/v1/deliveries?event_id="+id, "tok", "")
				data, _ := list["data"].([]any)
				if code != 200 || len(data) != 1 {
					t.Fatalf("%s: GET /api/v1/deliveries?event_id=…: HTTP %d, %d deliveries (%v); want the delivery to slow", when, code, len(data), list)
				}
				d := data[0].(map[string]any)
				if d["destination"] != "slow" || !is(d["status"]) {
					t.Errorf("%s: listed %v %v, want slow %v", when, d["destination"], d["status"], ok)
				}
				code, pend := apiDo(t, "GET", base+"/api/v1/deliveries?status=pending&destination=slow", "tok", "")
				if pd, _ := pend["data"].([]any); is("pending") && !is("delivering") && (code != 200 || len(pd) != 1) {
					t.Errorf("%s: GET /api/v1/deliveries?status=pending: HTTP %d %v, want the delivery", when, code, pend)
				}
				if dv := deliveryTo(t, base, id, "slow"); dv == nil || !is(dv["status"]) {
					t.Errorf("%s: the event's deliveries: %v, want slow %v", when, dv, ok)
				}
				code, one := apiDo(t, "GET", base+"/api/v1/deliveries/"+d["id"].(string), "tok", "")
				if code != 200 || !is(one["status"]) {
					t.Errorf("%s: GET /api/v1/deliveries/{id}: HTTP %d %v, want %v", when, code, one, ok)
				}
			}
			// On PostgreSQL a replica's claim makes it delivering as soon
			// as its attempt is about to start.
			unfinished := []string{"pending"}
			if driver == "postgres" {
				unfinished = append(unfinished, "delivering")
			}
			check("right after the ingest", unfinished...)
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("the first attempt did not reach the destination")
			}
			check("while the first attempt is held", unfinished...)
			release()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if dv := deliveryTo(t, base, id, "slow"); dv != nil && dv["status"] == "succeeded" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the delivery did not succeed once released")
				}
				time.Sleep(10 * time.Millisecond)
			}
			check("once released", "succeeded")
		})
	}
}

// Pages of GET /api/v1/deliveries hold the stored deliveries and those
// not yet written in one order (newest event first, then destination),
// each once, whatever the page size.
func TestDeliveryListPagesMixStoredAndUnwritten(t *testing.T) {
	held := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-held
	}))
	t.Cleanup(slow.Close)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	t.Cleanup(fast.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`admin: {tokens: [tok]}
egress: {allow_private: ["127.0.0.0/8"]}
sources: [{name: shop, event: {id: "json:id", type: "json:type"}}]
destinations: [{name: fast, type: http, url: %q}, {name: slow, type: http, url: %q}]
subscriptions: [{source: shop, destination: fast}, {source: shop, destination: slow}]
`, fast.URL, slow.URL)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage.Path = t.TempDir()
	_, base := startApp(t, cfg, nil)
	t.Cleanup(func() { close(held) })
	var ids []string
	for i := range 3 {
		ids = append(ids, postEvent(t, base, "shop", fmt.Sprintf(`{"id": "o-%d", "type": "order.paid"}`, i)))
	}
	var want []string
	for i := len(ids) - 1; i >= 0; i-- {
		want = append(want, ids[i]+"/fast", ids[i]+"/slow")
	}
	page := func(q string) ([]string, []string, string) {
		t.Helper()
		code, v := apiDo(t, "GET", base+"/api/v1/deliveries?"+q, "tok", "")
		if code != 200 {
			t.Fatalf("GET /api/v1/deliveries?%s: HTTP %d %v", q, code, v)
		}
		var keys, statuses []string
		data, _ := v["data"].([]any)
		for _, d := range data {
			m := d.(map[string]any)
			keys = append(keys, fmt.Sprint(m["event_id"], "/", m["destination"]))
			statuses = append(statuses, fmt.Sprint(m["status"]))
		}
		next, _ := v["next_cursor"].(string)
		return keys, statuses, next
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, st, _ := page("destination=fast&status=succeeded")
		if len(st) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deliveries to fast did not succeed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, limit := range []int{1, 2, 4, 6, 50} {
		var got []string
		q := fmt.Sprintf("limit=%d", limit)
		for pages := 0; ; pages++ {
			keys, _, next := page(q)
			if len(keys) > limit || pages > 6 {
				t.Fatalf("limit %d: page of %d, page %d", limit, len(keys), pages)
			}
			got = append(got, keys...)
			if next == "" {
				break
			}
			q = fmt.Sprintf("limit=%d&cursor=%s", limit, next)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("limit %d: listed\n%v\nwant\n%v", limit, got, want)
		}
	}
	keys, statuses, _ := page("status=pending")
	if fmt.Sprint(keys) != fmt.Sprint([]string{want[1], want[3], want[5]}) || fmt.Sprint(statuses) != "[pending pending pending]" {
		t.Errorf("status=pending: got %v %v, want the three to slow, pending", keys, statuses)
	}
}
