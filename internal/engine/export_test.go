package engine

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
