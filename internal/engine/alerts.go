package engine

import (
	"context"
	"strconv"
	"time"

	"hookd"
)

// alert hands a to Options.Alert, naming this replica.
func (e *Engine) alert(a hookd.Alert) {
	if e.onAlert == nil {
		return
	}
	a.Replica = e.ReplicaID()
	e.onAlert(a)
}

// switchKey is the key of the alert of a destination disabled or enabled
// at at: the store reports the change to one process only, so the key
// need only differ from one change to the next.
func switchKey(typ, name string, at time.Time) string {
	return typ + ":" + name + ":" + strconv.FormatInt(at.UnixMicro(), 10)
}

// ReplicaID is this replica's name in a cluster ("rep_…"), "" with a
// single process.
func (e *Engine) ReplicaID() string {
	if e.cl == nil {
		return ""
	}
	return e.cl.id
}

// Leader reports whether this process runs the maintenance of the store:
// always with a single process, the elected leader in a cluster.
func (e *Engine) Leader() bool {
	return e.cl == nil || e.cl.isLeader()
}

// DestinationNames returns the names of the destinations hookd runs.
func (e *Engine) DestinationNames() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.dests))
	for name := range e.dests {
		out = append(out, name)
	}
	return out
}

// DestinationDisable disables a destination on an operator's request:
// attempts stop, and its work waits in the store until it is enabled
// again. Disabling a disabled destination changes nothing.
func (e *Engine) DestinationDisable(ctx context.Context, name, reason string) (DestinationView, error) {
	e.defs.mu.Lock()
	v, err := e.destinationDisable(ctx, name, reason)
	e.defs.mu.Unlock()
	e.changedIf(err)
	return v, err
}

func (e *Engine) destinationDisable(ctx context.Context, name, reason string) (DestinationView, error) {
	e.mu.Lock()
	de := e.dests[name]
	e.mu.Unlock()
	if de == nil {
		return DestinationView{}, hookd.Errorf(hookd.ENotFound, "no destination named %q", name)
	}
	if reason == "" {
		reason = "disabled by an operator"
	}
	at := e.clock.Now()
	changed, err := e.st.DestinationSwitch(ctx, name, at, reason)
	if err != nil {
		return DestinationView{}, err
	}
	if changed {
		de.d.setDisabled(true, reason)
		e.log.Warn("destination disabled", "destination", name, "reason", reason, "by", hookd.ByOperator)
		e.alert(hookd.Alert{Type: hookd.AlertDestinationDisabled, Key: switchKey(hookd.AlertDestinationDisabled, name, at), Time: at,
			Destination: name, By: hookd.ByOperator, Reason: reason})
	}
	return e.viewOf(de), nil
}
