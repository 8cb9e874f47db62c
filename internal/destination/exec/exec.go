// Package exec is the exec destination: for each delivery it runs a
// configured command on the hookd host, as adnanh/webhook does, with
// hookd's durable queue and retries in front of it.
//
// # What the command receives
//
// The command is run directly (argv from the command option, no shell, no
// PATH lookup). Its standard input is the event's raw body, byte for byte.
// Its environment holds:
//
//	HOOKD_EVENT_ID      the event id (evt_…), the same on every attempt
//	HOOKD_EVENT_TYPE    the event type
//	HOOKD_EVENT_SOURCE  the source the event came in on
//	HOOKD_EVENT_KEY     the entity key (empty when none)
//	HOOKD_DELIVERY_ID   the delivery (this event to this destination)
//	HOOKD_ATTEMPT       the attempt number, 1 for the first
//	HOOKD_CONTENT_TYPE  the request's Content-Type (empty when none)
//	HOOKD_RECEIVED_AT   when hookd received the event (RFC 3339, nanoseconds, UTC)
//
// plus the env option; with inherit_env false (the default) nothing else
// but PATH (DefaultPath) and hookd's HOME, and with inherit_env true
// hookd's own environment except its HOOKD_* variables (which may hold
// secrets such as HOOKD_MASTER_KEY). A NUL byte in a value taken from the
// event is replaced with '?'.
//
// # Outcome
//
// Exit status 0 is success. A non-zero exit status is a failure that is
// retried, with the error "exec: exit status N: <first non-blank line of
// stderr, at most 200 bytes>", unless N is listed in final_exit_codes: then
// the delivery fails at once. A run longer than timeout (default 30s) has
// its whole process group killed with SIGKILL and is retried ("exec: timed
// out after …"); so is a command that could not be started or that died of
// a signal. When the caller's context ends (hookd shutting down), the
// process group is killed too and the attempt stays retriable. The
// attempt log gets the exit code as its status code (0 when there is none)
// and the first 1 KiB of stdout and stderr together (two pipes, merged as
// they are read: the order between the two streams is approximate); the
// rest is read and discarded, so a chatty command never blocks.
//
// Children the command leaves running in its process group are killed
// with it on a timeout or cancellation, not when the command exits by
// itself. Output a leftover child still holds open is waited for at most
// one second after the command exits.
//
// # At least once
//
// Like every destination, delivery is at least once: after a crash, a
// timeout or a retry, the command may run more than once for one event,
// even after a run that succeeded. Make it idempotent, keyed on
// HOOKD_EVENT_ID. Runs for different events happen concurrently (the
// destination's concurrency setting bounds how many).
//
// # Security
//
// An exec destination runs commands on the hookd host, as hookd's user.
// hookd therefore accepts it only from the configuration file, never
// through the admin API (the engine enforces that). Keep the command's
// arguments fixed: the event reaches it only through stdin and the
// HOOKD_* variables, which carry data from untrusted senders.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"hookd/internal/destination"
)

// Type is the destination type key.
const Type = "exec"

func init() {
	destination.Register(Type, destination.Decoded(func(_ *destination.Env, o Options) (*Destination, error) { return New(o) }))
}

// Environment variables set for every run.
const (
	EnvEventID     = "HOOKD_EVENT_ID"
	EnvEventType   = "HOOKD_EVENT_TYPE"
	EnvEventSource = "HOOKD_EVENT_SOURCE"
	EnvEventKey    = "HOOKD_EVENT_KEY"
	EnvDeliveryID  = "HOOKD_DELIVERY_ID"
	EnvAttempt     = "HOOKD_ATTEMPT"
	EnvContentType = "HOOKD_CONTENT_TYPE"
	EnvReceivedAt  = "HOOKD_RECEIVED_AT"
)

const (
	// waitDelay bounds how long Deliver waits, once the command has exited
	// or been killed, for output pipes that a leftover child holds open.
	waitDelay = time.Second
	// maxStderrLine caps the stderr line quoted in an error.
	maxStderrLine = 200
	// stderrKeep is how much of stderr is kept to find that line.
	stderrKeep = 1024
)

// Destination runs a command for each delivery. It is safe for
// concurrent use: each Deliver runs its own process.
type Destination struct {
	s      *settings
	closed atomic.Bool
}

var _ destination.Destination = (*Destination)(nil)

// New validates o and returns a destination. Errors name the option at
// fault.
func New(o Options) (*Destination, error) {
	if !supported {
		return nil, errors.New("exec destinations need a Unix system (process groups)")
	}
	s, err := o.validate()
	if err != nil {
		return nil, err
	}
	return &Destination{s: s}, nil
}

// errClosed is returned by Deliver after Close.
var errClosed = errors.New("exec: destination closed")

// errTimedOut is the cause of a run's context when timeout passed.
var errTimedOut = errors.New("exec: run timed out")

// Deliver runs the command once for m and classifies its outcome (see the
// package documentation). A cancelled ctx gives a retriable error that
// wraps ctx's error.
func (d *Destination) Deliver(ctx context.Context, m *destination.Message) (destination.Result, error) {
	if d.closed.Load() {
		return destination.Result{}, errClosed
	}
	if m == nil || m.Event == nil {
		return destination.Result{}, destination.Permanent(errors.New("exec: no event to deliver"))
	}
	if err := ctx.Err(); err != nil {
		return destination.Result{}, fmt.Errorf("exec: not started: %w", err)
	}
	rctx, cancel := context.WithTimeoutCause(ctx, d.s.timeout, errTimedOut)
	defer cancel()

	cmd := osexec.CommandContext(rctx, d.s.path)
	cmd.Args = d.s.args
	cmd.Env = d.environ(m)
	cmd.Dir = d.s.dir
	if len(m.Event.Body) > 0 {
		cmd.Stdin = bytes.NewReader(m.Event.Body)
	} // else /dev/null: an empty stdin
	out := &head{max: destination.MaxExcerpt}
	stderr := &head{max: stderrKeep}
	cmd.Stdout = out
	cmd.Stderr = tee{out, stderr}
	inGroup(cmd)
	cmd.WaitDelay = waitDelay

	if err := cmd.Start(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return destination.Result{}, fmt.Errorf("exec: not started: %w", cerr)
		}
		return destination.Result{}, fmt.Errorf("exec: start %s: %w", d.s.path, err)
	}
	werr := cmd.Wait()
	code, err := d.outcome(ctx, rctx, cmd.ProcessState, werr, stderr.bytes())
	return destination.Result{StatusCode: code, ResponseExcerpt: out.bytes()}, err
}

// outcome classifies a finished run: its exit code (0 when none) and its
// error. ctx is the caller's context, rctx the run's.
func (d *Destination) outcome(ctx, rctx context.Context, ps *os.ProcessState, werr error, stderr []byte) (int, error) {
	switch {
	case ps != nil && ps.Success():
		// Exit 0 is success even if a leftover child held its output
		// open past waitDelay (werr is then ErrWaitDelay).
		return 0, nil
	case ps != nil && ps.Exited():
		// The command exited by itself (a killed one has no exit code).
		code := ps.ExitCode()
		err := fmt.Errorf("exec: exit status %d%s", code, detail(stderr))
		if d.s.final[code] {
			err = destination.Permanent(err)
		}
		return code, err
	case ctx.Err() != nil:
		return 0, fmt.Errorf("exec: cancelled, process group killed: %w", ctx.Err())
	case errors.Is(context.Cause(rctx), errTimedOut):
		return 0, fmt.Errorf("exec: timed out after %s", d.s.timeout)
	case ps != nil:
		// Killed by a signal nobody here sent ("signal: killed").
		return 0, fmt.Errorf("exec: %s%s", ps, detail(stderr))
	default:
		return 0, fmt.Errorf("exec: %w", werr)
	}
}

// environ is the environment of one run: the configured one, then the
// event's HOOKD_* variables (never in the configured one).
func (d *Destination) environ(m *destination.Message) []string {
	ev := m.Event
	env := make([]string, 0, len(d.s.env)+8)
	env = append(env, d.s.env...)
	add := func(k, v string) { env = append(env, k+"="+strings.ReplaceAll(v, "\x00", "?")) }
	add(EnvEventID, ev.ID)
	add(EnvEventType, ev.Type)
	add(EnvEventSource, ev.Source)
	add(EnvEventKey, ev.Key)
	add(EnvDeliveryID, m.DeliveryID)
	add(EnvAttempt, strconv.Itoa(m.Attempt))
	add(EnvContentType, ev.ContentType)
	add(EnvReceivedAt, ev.ReceivedAt.UTC().Format(time.RFC3339Nano))
	return env
}

// Close makes later Deliver calls fail without starting a process; runs in
// flight finish (within their timeout). Safe to call more than once.
func (d *Destination) Close() error {
	d.closed.Store(true)
	return nil
}

// detail is ": " and the first non-blank line of stderr, trimmed, made
// printable and cut to maxStderrLine bytes; "" when there is none.
func detail(stderr []byte) string {
	s := strings.TrimLeftFunc(string(stderr), unicode.IsSpace)
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(strings.ToValidUTF8(s, "?"))
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > maxStderrLine {
		cut := maxStderrLine
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

// head is an io.Writer that keeps the first max bytes written to it and
// discards the rest. It never fails nor blocks the writer.
type head struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (h *head) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *head) bytes() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.buf) == 0 {
		return nil
	}
	return bytes.Clone(h.buf)
}

// tee writes to both of its heads.
type tee struct{ a, b *head }

func (t tee) Write(p []byte) (int, error) {
	_, _ = t.a.Write(p)
	return t.b.Write(p)
}
