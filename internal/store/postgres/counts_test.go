package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"hookd/internal/store"
)

// Two replicas writing outcomes of one destination at once: the counts
// every replica reads are the sum of both, per minute too, whether they
// drew one slot or two.
func TestAttemptCountsAcrossReplicas(t *testing.T) {
	for _, slots := range [][2]int16{{0, 1}, {3, 3}} {
		t.Run(fmt.Sprintf("Slots%dAnd%d", slots[0], slots[1]), func(t *testing.T) {
			schema := newSchema(t)
			a := openTest(t, schema, testLogger(t))
			b := openTest(t, schema, testLogger(t))
			a.countSlot, b.countSlot = slots[0], slots[1]
			const perReplica, batch = 60, 6
			minute := time.Now().UTC().Truncate(time.Minute)
			var wg sync.WaitGroup
			for r, st := range []*Store{a, b} {
				ids := seedDeliveries(t, st, "dest", perReplica, time.Now())
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perReplica; i += batch {
						ws := make([]*store.DeliveryWrite, 0, batch)
						for j, id := range ids[i : i+batch] {
							d, err := st.DeliveryGet(t.Context(), id)
							if err != nil {
								t.Errorf("replica %d: DeliveryGet: %v", r, err)
								return
							}
							row := *d
							row.AttemptLog = nil
							row.Attempts, row.RoundAttempts = 1, 1
							row.Status = store.StatusSucceeded
							if (i+j)%3 == 0 {
								row.Status, row.NextAttemptAt = store.StatusRetrying, time.Now().Add(time.Hour)
							}
							row.UpdatedAt = minute.Add(time.Duration(j) * time.Second)
							ws = append(ws, &store.DeliveryWrite{Delivery: &row, Fence: 0, Outcome: true})
						}
						if skipped, err := st.DeliveryWriteMany(t.Context(), ws, 0); err != nil || len(skipped) > 0 {
							t.Errorf("replica %d: DeliveryWriteMany: skipped %v, %v", r, skipped, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			want := store.AttemptCounts{Attempts: 2 * perReplica, Succeeded: 2 * perReplica * 2 / 3, Retried: 2 * perReplica / 3}
			for r, st := range []*Store{a, b} {
				got, err := st.AttemptCountTotals(t.Context())
				if err != nil || got["dest"] != want {
					t.Errorf("replica %d: AttemptCountTotals: got %+v, %v; want dest: %+v", r, got, err, want)
				}
				ms, err := st.AttemptCountList(t.Context(), &store.AttemptCountListParams{Destination: "dest"})
				if err != nil || len(ms) != 1 || !ms[0].Minute.Equal(minute) || ms[0].AttemptCounts != want {
					t.Errorf("replica %d: AttemptCountList: got %d minutes (%v), want one: %v %+v", r, len(ms), err, minute, want)
				}
			}
		})
	}
}
