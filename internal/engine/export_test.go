package engine

import "hookd"

// DispatcherRunning reports whether the goroutine of the destination's
// dispatcher runs (tests of idle destinations).
func DispatcherRunning(e *Engine, name string) bool {
	e.mu.Lock()
	de := e.dests[name]
	e.mu.Unlock()
	if de == nil {
		return false
	}
	de.d.mu.Lock()
	defer de.d.mu.Unlock()
	return de.d.running
}

// WrapMatch makes the engine built from o route with w(the table's Match).
func WrapMatch(o *Options, w func(func(*hookd.Event) []string) func(*hookd.Event) []string) {
	o.wrapMatch = w
}
