package sqlite

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"hookd"
	"hookd/internal/store"
	"hookd/internal/store/wal/crashfs"
)

// TestPowerLoss cuts the power under the whole embedded store at random
// points and opens it again on what the disk holds.
//
// The model. The write-ahead log, which is what acknowledges an event,
// runs on crashfs: at the crash, every log write no completed fdatasync
// covers is lost (the last one torn, some pages kept at random) and every
// directory change no directory sync covers is undone. SQLite writes
// hookd.db through its own file layer, which crashfs cannot reach: it is
// taken as durable with every transaction it committed, and the store is
// closed after the crash so that its indexer commits what it had taken
// (only records the log had synced; the log's later operations all fail,
// as on a machine without power). A real power loss can also take back
// SQLite's commits since its last sync; that leaves an index that ends
// earlier, which the next start completes from the log, as it does after
// every start (TestLoggedEventsSurviveACrashBeforeIndexing).
//
// Each trial is a chain of generations on one data directory: open (the
// crash may come during the recovery itself), check, then several clients
// insert and sync (as the batcher does), an event acknowledged once its
// Sync returned; events not acknowledged are sent again at the next
// generation with the same provider id, as a provider retries. One
// generation in three ends in a process kill instead (the kernel keeps
// the unsynced writes, for a later power loss to take). After every crash
// the store opens, every acknowledged event is there once with its body
// intact, and no event is there twice or corrupt.
//
// HOOKD_POWERLOSS_POINTS sets the number of crash points (default 30);
// HOOKD_POWERLOSS_ACK_BEFORE_SYNC=1 turns on the negative control (Sync
// answers before the log is synced), with which the test must fail.
func TestPowerLoss(t *testing.T) {
	points := 30
	if v := os.Getenv("HOOKD_POWERLOSS_POINTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("HOOKD_POWERLOSS_POINTS=%q: want a positive number", v)
		}
		points = n
	}
	if os.Getenv("HOOKD_POWERLOSS_ACK_BEFORE_SYNC") == "1" {
		ackBeforeSync.Store(true)
		t.Cleanup(func() { ackBeforeSync.Store(false) })
		t.Log("negative control on: Sync answers before the log is synced")
	}
	var complaints int
	cal := newStoreTrial(t, 1, &complaints)
	cal.generation(0, false)
	cal.close()
	span := cal.lastOps + cal.lastOps/10 + 1
	base := uint64(time.Now().UnixNano())
	t.Logf("seed base %d, %d log operations per generation", base, cal.lastOps)

	var tried, kills, checked, distinct, lost int
	for trial := 0; tried < points; trial++ {
		tr := newStoreTrial(t, base+uint64(trial), &complaints)
		tr.lost = lost
		rng := rand.New(rand.NewPCG(tr.seed, 2))
		for g := 0; g < 3 && tried < points; g++ {
			// One in three is a process kill: the page cache stays, and
			// a later power loss takes what was never synced.
			kill := rng.IntN(3) == 0
			tr.generation(1+rng.IntN(span), kill)
			tried++
			if kill {
				kills++
			}
		}
		tr.verifyOnly()
		tr.close()
		checked += tr.checked
		distinct += tr.distinct
		lost = tr.lost
	}
	t.Logf("crash points tried %d (%d power losses, %d process kills), acknowledged events checked %d (%d checks after a crash), lost %d",
		tried, tried-kills, kills, distinct, checked, lost)
	if lost > 0 {
		t.Errorf("lost %d acknowledged events over %d crash points", lost, tried)
	}
}

const (
	slClients = 4
	slBatches = 12 // per client and generation
)

type slEvent struct {
	ext  string
	id   string // the id the event was acknowledged with
	body []byte
}

type storeTrial struct {
	t    *testing.T
	seed uint64
	dir  string
	img  crashfs.Image
	log  *slog.Logger
	// acked holds the events acknowledged, by provider id; pending the
	// ones sent and not acknowledged, sent again at the next generation.
	acked   map[string]slEvent
	pending []slEvent
	next    int

	checked, lost int
	distinct      int                 // events checked after a crash at least once
	seenOnce      map[string]struct{} // which
	lastOps       int
	complaints    *int // failures named so far, over every trial
	// killed is the log's file system of a killed process, which the
	// next one restarts on (nil after a power loss: img holds the disk).
	killed *crashfs.FS
}

// errorf fails the test, naming the first few failures only.
func (tr *storeTrial) errorf(format string, args ...any) {
	tr.t.Helper()
	if *tr.complaints++; *tr.complaints <= 8 {
		tr.t.Errorf(format, args...)
	} else {
		tr.t.Fail()
	}
}

func newStoreTrial(t *testing.T, seed uint64, complaints *int) *storeTrial {
	dir, err := os.MkdirTemp("", "hookd-powerloss-")
	if err != nil {
		t.Fatal(err)
	}
	return &storeTrial{
		t: t, seed: seed, dir: dir, img: crashfs.Image{filepath.Join(dir, LogDir): {}},
		log:   slog.New(slog.NewTextHandler(io.Discard, nil)), // errors after the crash are expected
		acked: map[string]slEvent{}, complaints: complaints, seenOnce: map[string]struct{}{},
	}
}

func (tr *storeTrial) close() { os.RemoveAll(tr.dir) }

// slBody is an event body: its provider id, random bytes, and a CRC.
func slBody(rng *rand.Rand, ext string) []byte {
	n := len(ext) + 1 + rng.IntN(2000)
	b := make([]byte, n+4)
	copy(b, ext+":")
	for i := len(ext) + 1; i < n; i++ {
		b[i] = byte('a' + rng.IntN(26))
	}
	binary.LittleEndian.PutUint32(b[n:], crc32.ChecksumIEEE(b[:n]))
	return b
}

func slIntact(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	n := len(b) - 4
	return crc32.ChecksumIEEE(b[:n]) == binary.LittleEndian.Uint32(b[n:])
}

// open opens the store on the disk as the crash left it, nil if the
// power went out again during the recovery.
func (tr *storeTrial) open(fsys *crashfs.FS) *Store {
	t := tr.t
	t.Helper()
	st, err := Open(t.Context(), tr.dir, tr.log, Options{
		SegmentSize: 8 << 10, IndexLinger: time.Millisecond, IndexSync: 5 * time.Millisecond,
		CheckpointInterval: 10 * time.Millisecond, logFS: fsys,
	})
	if err != nil {
		if fsys.Crashed() {
			return nil
		}
		t.Fatalf("seed %d: the store does not open after a crash: %v", tr.seed, err)
	}
	if fsys.Crashed() {
		st.Close()
		return nil
	}
	tr.check(st)
	return st
}

// check lists every event and holds it against what was acknowledged.
func (tr *storeTrial) check(st *Store) {
	t := tr.t
	t.Helper()
	found := map[string]int{}
	after := ""
	for {
		evs, next, err := st.EventList(t.Context(), &store.EventListParams{After: after, Limit: store.MaxListLimit})
		if err != nil {
			t.Fatalf("seed %d: list events after a crash: %v", tr.seed, err)
		}
		for _, e := range evs {
			if found[e.ExternalID]++; found[e.ExternalID] == 2 {
				tr.errorf("seed %d: event %s stored twice", tr.seed, e.ExternalID)
			}
			got, err := st.EventGet(t.Context(), e.ID)
			if err != nil || !slIntact(got.Body) || !bytes.HasPrefix(got.Body, []byte(e.ExternalID+":")) {
				// Not there as far as a reader can tell.
				found[e.ExternalID]--
				tr.errorf("seed %d: event %s (%s) is corrupt: %v", tr.seed, e.ID, e.ExternalID, err)
				continue
			}
			if a, ok := tr.acked[e.ExternalID]; ok && (a.id != e.ID || !bytes.Equal(a.body, got.Body)) {
				tr.errorf("seed %d: event %s: got id %s, want the acknowledged %s with its body", tr.seed, e.ExternalID, e.ID, a.id)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	for ext := range tr.acked {
		tr.checked++
		if _, ok := tr.seenOnce[ext]; !ok {
			tr.seenOnce[ext] = struct{}{}
			tr.distinct++
		}
		if found[ext] == 0 {
			delete(tr.acked, ext) // counted once
			tr.lost++
			tr.errorf("seed %d: acknowledged event %s is lost", tr.seed, ext)
		}
	}
}

func (tr *storeTrial) verifyOnly() {
	if tr.killed != nil {
		// The last generation was killed: the power goes out too.
		tr.killed.Crash()
		tr.img, tr.killed = tr.killed.Image(), nil
	}
	fsys := crashfs.New(tr.img, tr.seed)
	if st := tr.open(fsys); st != nil {
		st.Close()
	}
}

// generation opens the store, runs the clients and cuts the power (or
// kills the process) at log operation crashAt (0: after the clients).
func (tr *storeTrial) generation(crashAt int, kill bool) {
	var fsys *crashfs.FS
	if tr.killed != nil {
		fsys = tr.killed.Restart(tr.seed + uint64(tr.next))
	} else {
		fsys = crashfs.New(tr.img, tr.seed+uint64(tr.next))
	}
	if kill {
		fsys.KillAt(crashAt)
	} else {
		fsys.CrashAt(crashAt)
	}
	st := tr.open(fsys)
	if st != nil {
		tr.run(st)
	}
	// The power goes out, or the process dies, if it has not yet; only
	// then does the store stop: what it does afterwards cannot reach the
	// log's disk.
	tr.lastOps = fsys.Ops()
	if kill {
		fsys.Kill()
		tr.killed = fsys
	} else {
		fsys.Crash()
		tr.img, tr.killed = fsys.Image(), nil
	}
	if st != nil {
		st.Close()
	}
}

// run runs the clients until they are done or the power is out.
func (tr *storeTrial) run(st *Store) {
	ctx := tr.t.Context()

	rng := rand.New(rand.NewPCG(tr.seed, uint64(tr.next)))
	// The events of this generation: the ones not acknowledged before,
	// sent again, then new ones.
	evs := tr.pending
	tr.pending = nil
	for range slClients * slBatches * 2 {
		tr.next++
		ext := "e" + strconv.Itoa(tr.next)
		evs = append(evs, slEvent{ext: ext, body: slBody(rng, ext)})
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sent int
	)
	for range slClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range slBatches {
				mu.Lock()
				k := min(1+sent%3, len(evs)-sent)
				batch := evs[sent : sent+k]
				sent += k
				mu.Unlock()
				if k == 0 {
					return
				}
				ins := make([]*store.EventInsert, k)
				for i, e := range batch {
					now := time.Now()
					rid := hookd.RequestIDPrefix + hookd.NewULID(now)
					ins[i] = &store.EventInsert{DedupeWindow: time.Hour, Event: &hookd.Event{
						ID: hookd.EventIDForRequest(rid), RequestID: rid, Source: "s", ExternalID: e.ext,
						ReceivedAt: now, ContentType: "application/octet-stream", Body: e.body,
					}}
				}
				res, err := st.EventInsertMany(ctx, ins)
				if err == nil {
					err = st.Sync()
				}
				mu.Lock()
				if err != nil {
					// Not acknowledged: the provider sends them again
					// (and the ones it never got to).
					tr.pending = append(tr.pending, batch...)
					mu.Unlock()
					return
				}
				for i, e := range batch {
					e.id = res[i].ID
					tr.acked[e.ext] = e
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	tr.pending = append(tr.pending, evs[min(sent, len(evs)):]...)
}
