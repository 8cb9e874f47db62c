package engine

import (
	"container/heap"
	"sync"
	"time"
)

// scheduler wakes dispatchers whose loop has exited when their next work
// is due (a retry waiting in the store, the head of an ordered lane): one
// timer for the whole engine instead of a goroutine per destination.
type scheduler struct {
	clock Clock
	mu    sync.Mutex
	h     schedHeap
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
	ran   bool
}

func newScheduler(c Clock) *scheduler {
	return &scheduler{clock: c, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// at asks for d to be poked at t (or earlier, if it already asked for an
// earlier time).
func (s *scheduler) at(d *dispatcher, t time.Time) {
	s.mu.Lock()
	switch {
	case d.schedIdx < 0:
		d.schedAt = t
		heap.Push(&s.h, d)
	case t.Before(d.schedAt):
		d.schedAt = t
		heap.Fix(&s.h, d.schedIdx)
	default:
		s.mu.Unlock()
		return
	}
	first := s.h[0] == d
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// remove forgets d (a destination removed or stopped).
func (s *scheduler) remove(d *dispatcher) {
	s.mu.Lock()
	if d.schedIdx >= 0 {
		heap.Remove(&s.h, d.schedIdx)
	}
	s.mu.Unlock()
}

// start runs the scheduler until stop.
func (s *scheduler) start() {
	s.mu.Lock()
	s.ran = true
	s.mu.Unlock()
	go s.run()
}

// run pokes the dispatchers as their times come, until stop.
func (s *scheduler) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		now := s.clock.Now()
		var due []*dispatcher
		for len(s.h) > 0 && !s.h[0].schedAt.After(now) {
			due = append(due, heap.Pop(&s.h).(*dispatcher))
		}
		var next time.Time
		if len(s.h) > 0 {
			next = s.h[0].schedAt
		}
		s.mu.Unlock()
		for _, d := range due {
			d.poke()
		}
		var timer Timer
		var tc <-chan time.Time
		if !next.IsZero() {
			// Measured from the clock's time now, not the time read
			// above: a fake clock advanced meanwhile fires it at once.
			timer = s.clock.NewTimer(next.Sub(s.clock.Now()))
			tc = timer.C()
		}
		select {
		case <-tc:
		case <-s.wake:
		case <-s.quit:
			if timer != nil {
				timer.Stop()
			}
			return
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// stop ends run (if it ran) and waits for it.
func (s *scheduler) stop() {
	s.mu.Lock()
	ran := s.ran
	s.mu.Unlock()
	close(s.quit)
	if ran {
		<-s.done
	}
}

// schedHeap orders dispatchers by schedAt.
type schedHeap []*dispatcher

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].schedAt.Before(h[j].schedAt) }
func (h schedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].schedIdx, h[j].schedIdx = i, j
}
func (h *schedHeap) Push(x any) {
	d := x.(*dispatcher)
	d.schedIdx = len(*h)
	*h = append(*h, d)
}
func (h *schedHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	d.schedIdx = -1
	return d
}
