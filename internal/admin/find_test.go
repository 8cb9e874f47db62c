package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
)

// TestEventsFind covers the listing's finding filters: a type pattern, a
// delivery's destination and status, and a search in bodies.
func TestEventsFind(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var seqs []int64
	for i, s := range []struct{ typ, body string }{
		{"order.created", `{"customer":"Ada Lovelace"}`},
		{"order.paid.v2", `{"customer":"Grace Hopper"}`},
		{"invoice.created", `{"customer":"ada lovelace"}`},
		{"order", `{"customer":"nobody"}`},
		{"order.created", "\xff\xfeAda"},
	} {
		r := h.insert(t, newEvent("a", s.typ, "", base.Add(time.Duration(i)*time.Minute), s.body), 0)
		seqs = append(seqs, r.Seq)
	}
	ev := h.events
	del := func(i int, dest, status string) *store.DeliveryWrite {
		return &store.DeliveryWrite{Fence: store.FenceNone, Delivery: &store.Delivery{
			ID: store.DeliveryID(ev[i].ID, dest), EventID: ev[i].ID, EventSeq: seqs[i], Destination: dest,
			Status: status, NextAttemptAt: base, CreatedAt: base, UpdatedAt: base,
		}}
	}
	if _, err := h.st.DeliveryWriteMany(context.Background(), []*store.DeliveryWrite{
		del(0, "crm", store.StatusFailed), del(1, "crm", store.StatusSucceeded), del(1, "ledger", store.StatusFailed),
	}, 0); err != nil {
		t.Fatal(err)
	}
	newest := func(is ...int) []string {
		var out []string
		for j := len(is) - 1; j >= 0; j-- {
			out = append(out, ev[is[j]].ID)
		}
		return out
	}
	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"TypePattern", url.Values{"type": {"order.*"}}, newest(0, 1, 4)},
		{"TypePatternMiddle", url.Values{"type": {"*.created"}}, newest(0, 2, 4)},
		{"TypeExact", url.Values{"type": {"order"}}, newest(3)},
		{"Destination", url.Values{"destination": {"crm"}}, newest(0, 1)},
		{"DestinationAndStatus", url.Values{"destination": {"crm"}, "status": {"failed"}}, newest(0)},
		{"StatusOtherDestination", url.Values{"destination": {"ledger"}, "status": {"succeeded"}}, nil},
		// Any case; a binary body is not searched.
		{"Search", url.Values{"q": {"ADA"}}, newest(0, 2)},
		{"SearchAndType", url.Values{"q": {"ada"}, "type": {"order.*"}}, newest(0)},
		{"SearchNoBody", url.Values{"q": {"hopper"}, "body": {"false"}}, newest(1)},
		{"SearchNothing", url.Values{"q": {"zebra"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, limit := range []string{"", "1"} {
				q := url.Values{}
				for k, v := range tt.query {
					q[k] = v
				}
				if limit != "" {
					q.Set("limit", limit)
				}
				got, _ := h.walk(t, q)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("limit %q: got %q, want %q", limit, got, tt.want)
				}
			}
		})
	}
	t.Run("SearchBodyFalseLeavesBodiesOut", func(t *testing.T) {
		var l listJSON
		h.getOK(t, "/api/v1/events?q=hopper&body=false", &l)
		if len(l.Data) != 1 || l.Data[0].BodyBase64 != nil {
			t.Errorf("got %+v, want one event without its body", l.Data)
		}
	})
	for _, q := range []string{"type=order.**", "type=ord*", "type=.*", "q=", "q=%FF"} {
		t.Run("Bad/"+q, func(t *testing.T) {
			t.Parallel()
			wantError(t, h.get(t, "/api/v1/events?"+q, "Bearer "+token), http.StatusBadRequest, hookd.EInvalid)
		})
	}
}
