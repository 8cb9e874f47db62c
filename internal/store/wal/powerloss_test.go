package wal_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"hookd/internal/store/wal"
	"hookd/internal/store/wal/crashfs"
)

// The power-loss tests run the log on crashfs, which at a random operation
// cuts the power: every write no completed fdatasync covers is lost (the
// last one torn, some other pages kept at random), and every directory
// change no directory sync covers is undone. The log is then opened on
// what the disk holds, as hookd opens it at the next start.
//
// Each trial is a chain of generations on one disk: open, replay from the
// index position, then several writers append and sync (as the batcher
// does, one append at a time, syncs concurrent), acknowledging a record
// once its Sync returned; an indexer advances the index position over
// acknowledged records and releases old sealed segments (as retention
// does); the power goes out at a random operation, from the first one of
// the generation (during recovery) to past the last. One generation in
// three ends in a process kill instead: the next one finds the kernel's
// page cache, synced or not, and a later power loss takes what was never
// synced (so what a replay returns must have been synced by it). After
// every crash:
//
//   - the log opens and replays without error;
//   - every acknowledged record after the index position is replayed
//     exactly once, with its LSN and the very bytes acknowledged;
//   - every acknowledged record at or before the index position whose
//     segment was not released reads back, intact, where Append said;
//   - nothing replayed is corrupt: every record carries a checksum of its
//     own, and is the one appended at its LSN;
//   - what a replay returned counts as acknowledged from then on (the
//     store indexes it).
//
// HOOKD_POWERLOSS_POINTS sets the number of crash points (default 210);
// HOOKD_POWERLOSS_ACK_BEFORE_SYNC=1 turns on the negative control (Sync
// answers before syncing), with which the test must fail.

const (
	plDir         = "/disk/log"
	plSegmentSize = 8 << 10
	plWriters     = 4
	plBatches     = 24 // per writer and generation
	plGenerations = 3  // crashes per trial
	plKeepSealed  = 6  // sealed segments the indexer keeps
)

// powerLossPoints is how many crash points a power-loss test tries.
func powerLossPoints(t *testing.T, def int) int {
	v := os.Getenv("HOOKD_POWERLOSS_POINTS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("HOOKD_POWERLOSS_POINTS=%q: want a positive number", v)
	}
	return n
}

// plRecord is a record the test appended.
type plRecord struct {
	seg     uint64
	off     int64
	payload []byte
}

// plPayload makes a record: its id, random bytes, and a CRC of both.
func plPayload(rng *rand.Rand, id uint64) []byte {
	n := 8 + rng.IntN(3000)
	p := make([]byte, n+4)
	binary.LittleEndian.PutUint64(p, id)
	for i := 8; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(p[i:n], w[:])
	}
	binary.LittleEndian.PutUint32(p[n:], crc32.ChecksumIEEE(p[:n]))
	return p
}

// plIntact reports whether p is a record plPayload made, unharmed.
func plIntact(p []byte) bool {
	if len(p) < 12 {
		return false
	}
	n := len(p) - 4
	return crc32.ChecksumIEEE(p[:n]) == binary.LittleEndian.Uint32(p[n:])
}

// plTrial is the disk of one chain of crashes and what must be on it.
type plTrial struct {
	t     *testing.T
	seed  uint64
	img   crashfs.Image
	index uint64 // the index position: durable, as SQLite's is
	// acked holds the records that must survive: acknowledged (or
	// replayed) and not released.
	acked map[uint64]plRecord
	// appended holds every record appended at an LSN (a later
	// generation may append another at an LSN a crash took back).
	appended map[uint64][]byte
	nextID   uint64

	checked, lost int
	distinct      int                 // records checked after a crash at least once
	seenOnce      map[uint64]struct{} // which
	lastOps       int                 // operations of the last generation
	// killed is the file system of a killed process, which the next
	// one restarts on (nil after a power loss: img holds the disk).
	killed *crashfs.FS
}

// disk is the file system the next generation opens.
func (tr *plTrial) disk(seed uint64) *crashfs.FS {
	if tr.killed != nil {
		return tr.killed.Restart(seed)
	}
	return crashfs.New(tr.img, seed)
}

func TestPowerLoss(t *testing.T) {
	points := powerLossPoints(t, 210)
	if os.Getenv("HOOKD_POWERLOSS_ACK_BEFORE_SYNC") == "1" {
		wal.SetAckBeforeSync(true)
		t.Cleanup(func() { wal.SetAckBeforeSync(false) })
		t.Log("negative control on: Sync answers before it syncs")
	}
	// How many operations one generation makes when nothing crashes:
	// crash points are drawn up to a little past it.
	cal := newTrial(t, 1)
	cal.generation(0, false)
	span := cal.lastOps + cal.lastOps/10 + 1
	base := uint64(time.Now().UnixNano())
	t.Logf("seed base %d, %d operations per generation", base, cal.lastOps)

	var points2, kills, checked, distinct, lost int
	for trial := 0; points2 < points; trial++ {
		tr := newTrial(t, base+uint64(trial))
		tr.lost = lost // the first few losses are named, the rest counted
		rng := rand.New(rand.NewPCG(tr.seed, 1))
		for g := 0; g < plGenerations && points2 < points; g++ {
			// One in three is a process kill: the page cache stays, and
			// a later power loss takes what was never synced.
			kill := rng.IntN(3) == 0
			tr.generation(1+rng.IntN(span), kill)
			points2++
			if kill {
				kills++
			}
		}
		// Open once more: the last crash is checked too.
		tr.verifyOnly()
		checked += tr.checked
		distinct += tr.distinct
		lost = tr.lost
	}
	t.Logf("crash points tried %d (%d power losses, %d process kills), acknowledged records checked %d (%d checks after a crash), lost %d",
		points2, points2-kills, kills, distinct, checked, lost)
	if lost > 0 {
		t.Errorf("lost %d acknowledged records over %d crash points", lost, points2)
	}
}

func newTrial(t *testing.T, seed uint64) *plTrial {
	return &plTrial{
		t: t, seed: seed, img: crashfs.Image{plDir: {}},
		acked: map[uint64]plRecord{}, appended: map[uint64][]byte{}, seenOnce: map[uint64]struct{}{},
	}
}

// open opens the log on the disk and replays it from the index position,
// checking what it finds. It returns nil if the power went out meanwhile.
func (tr *plTrial) open(fsys *crashfs.FS) *wal.Log {
	t := tr.t
	t.Helper()
	l, err := wal.Open(plDir, wal.Options{FS: fsys, SegmentSize: plSegmentSize, Spares: 2})
	if err != nil {
		if fsys.Crashed() {
			return nil
		}
		t.Fatalf("seed %d: the log does not open after a crash: %v", tr.seed, err)
	}
	seen := map[uint64]bool{}
	ids := map[uint64]uint64{}
	var prev uint64
	replayed := map[uint64]plRecord{}
	_, err = l.Replay(tr.index, func(lsn, seg uint64, off int64, p []byte) error {
		if lsn <= tr.index || (prev != 0 && lsn != prev+1) || seen[lsn] {
			t.Errorf("seed %d: replay gave LSN %d after %d (index %d)", tr.seed, lsn, prev, tr.index)
		}
		prev, seen[lsn] = lsn, true
		if !plIntact(p) {
			t.Errorf("seed %d: record %d is corrupt", tr.seed, lsn)
			return nil
		}
		if a, ok := tr.appended[lsn]; !ok || !bytes.Equal(a, p) {
			t.Errorf("seed %d: record %d is not the one appended at that LSN", tr.seed, lsn)
		}
		id := binary.LittleEndian.Uint64(p)
		if other, dup := ids[id]; dup {
			t.Errorf("seed %d: record id %d replayed twice, at LSNs %d and %d", tr.seed, id, other, lsn)
		}
		ids[id] = lsn
		replayed[lsn] = plRecord{seg: seg, off: off, payload: bytes.Clone(p)}
		return nil
	})
	crashed := fsys.Crashed()
	if err != nil && !crashed {
		t.Fatalf("seed %d: replay after a crash: %v", tr.seed, err)
	}
	// What a replay gave before the power went out again was synced
	// first: the store indexes it, and relies on it from then on.
	for lsn, r := range replayed {
		tr.acked[lsn] = r
	}
	if crashed {
		l.Close()
		return nil
	}
	for lsn, r := range tr.acked {
		tr.checked++
		if _, ok := tr.seenOnce[lsn]; !ok {
			tr.seenOnce[lsn] = struct{}{}
			tr.distinct++
		}
		if lsn > tr.index {
			if !seen[lsn] {
				delete(tr.acked, lsn) // counted once
				tr.lost++
				if tr.lost <= 5 {
					t.Errorf("seed %d: acknowledged record %d is lost (index %d)", tr.seed, lsn, tr.index)
				}
			}
			continue
		}
		got, p, err := l.ReadRecord(r.seg, r.off)
		if err != nil || got != lsn || !bytes.Equal(p, r.payload) {
			delete(tr.acked, lsn)
			tr.lost++
			if tr.lost <= 5 {
				t.Errorf("seed %d: acknowledged record %d at %d:%d does not read back: lsn %d, %v", tr.seed, lsn, r.seg, r.off, got, err)
			}
		}
	}
	return l
}

// verifyOnly opens the disk as it is and checks it.
func (tr *plTrial) verifyOnly() {
	if tr.killed != nil {
		// The last generation was killed: the power goes out too.
		tr.killed.Crash()
		tr.img, tr.killed = tr.killed.Image(), nil
	}
	fsys := crashfs.New(tr.img, tr.seed)
	if l := tr.open(fsys); l != nil {
		l.Close()
	}
}

// generation opens the disk, runs the workload and cuts the power (or
// kills the process) at operation crashAt (0: after the workload).
func (tr *plTrial) generation(crashAt int, kill bool) {
	tr.lastOps = 0
	fsys := tr.disk(tr.seed + uint64(len(tr.appended)))
	if kill {
		fsys.KillAt(crashAt)
	} else {
		fsys.CrashAt(crashAt)
	}
	var l *wal.Log
	defer func() {
		// The power goes out (or the process dies) first: nothing the
		// log does while it closes reaches the disk.
		tr.lastOps = fsys.Ops()
		if kill {
			fsys.Kill()
			tr.killed = fsys
		} else {
			fsys.Crash()
			tr.img, tr.killed = fsys.Image(), nil
		}
		if l != nil {
			l.Close()
		}
	}()
	if l = tr.open(fsys); l == nil {
		return
	}

	var (
		appendMu sync.Mutex // one appender at a time, as the store's
		mu       sync.Mutex // tr's maps
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	rng := rand.New(rand.NewPCG(tr.seed, uint64(len(tr.appended))))
	payloads := make([][]byte, 0, plWriters*plBatches*3)
	for range plWriters * plBatches * 3 {
		tr.nextID++
		payloads = append(payloads, plPayload(rng, tr.nextID))
	}
	var next int
	for range plWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b wal.Batch
			for range plBatches {
				appendMu.Lock()
				b.Reset()
				k := 1 + (next % 3)
				batch := payloads[next : next+k]
				next += k
				for _, p := range batch {
					b.Done(append(b.Next(), p...))
				}
				first, seg, off, err := l.Append(&b)
				if err == nil {
					mu.Lock()
					for i, p := range batch {
						tr.appended[first+uint64(i)] = p
					}
					mu.Unlock()
				}
				appendMu.Unlock()
				if err != nil {
					return
				}
				if err := l.Sync(); err != nil {
					return
				}
				mu.Lock()
				for i, p := range batch {
					lsn := first + uint64(i)
					tr.acked[lsn] = plRecord{seg: seg, off: off + b.Offset(i), payload: p}
				}
				mu.Unlock()
			}
		}()
	}
	// The indexer: the index position follows the acknowledged records
	// (in LSN order, as the store hands them over), and sealed segments
	// wholly before it are released, all but the newest few (their
	// records are deleted first, as retention deletes events).
	idxDone := make(chan struct{})
	go func() {
		defer close(idxDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			for tr.acked[tr.index+1].payload != nil {
				tr.index++
			}
			index := tr.index
			mu.Unlock()
			sealed := l.Sealed()
			for i, s := range sealed {
				if i+plKeepSealed >= len(sealed) || s.Last > index {
					break
				}
				mu.Lock()
				for lsn := s.First; lsn <= s.Last; lsn++ {
					delete(tr.acked, lsn)
				}
				mu.Unlock()
				if err := l.Release(s.First); err != nil {
					if !fsys.Crashed() {
						tr.t.Errorf("seed %d: release %d: %v", tr.seed, s.First, err)
					}
					return
				}
			}
			if fsys.Crashed() {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	wg.Wait()
	close(stop)
	<-idxDone
	if err := l.Err(); err != nil && !fsys.Crashed() {
		tr.t.Errorf("seed %d: log failed without a crash: %v", tr.seed, err)
	}
}
