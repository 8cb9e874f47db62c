package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child is a server running as a child process of the bench.
type Child struct {
	// Name is the server's name in messages.
	Name string
	// Addr is the address the child said it listens on.
	Addr string

	cmd     *exec.Cmd
	waited  chan struct{} // closed when the process has exited
	waitErr error
	stderr  *lineWriter
	stopped bool
}

// ChildSpec describes a child process to start.
type ChildSpec struct {
	// Name is the server's name in messages and in the prefix of its
	// forwarded stderr lines.
	Name string
	// Path is the executable; Args its arguments (without the program
	// name); Env its environment (nil: the bench's own).
	Path string
	Args []string
	Env  []string
	// Addr extracts the listen address from one line of the child's
	// stdout; ok is false for other lines.
	Addr func(line string) (addr string, ok bool)
	// Stderr gets the child's first StderrLines stderr lines, prefixed
	// with its name; later lines are only counted. Nil discards them.
	Stderr      io.Writer
	StderrLines int
	// StartTimeout bounds the wait for the address line. Default 30s.
	StartTimeout time.Duration
}

// StartChild starts the process and waits until it prints its address. If
// the child exits first, or does not print it in time, StartChild kills it
// and returns an error that quotes the start of its stderr.
func StartChild(ctx context.Context, s ChildSpec) (*Child, error) {
	if s.StartTimeout <= 0 {
		s.StartTimeout = 30 * time.Second
	}
	addrs := make(chan string, 1)
	found := false
	stdout := &lineWriter{fn: func(line string) {
		if found {
			return
		}
		if a, ok := s.Addr(line); ok {
			found = true
			addrs <- a
		}
	}}
	stderr := &lineWriter{name: s.Name, out: s.Stderr, keep: s.StderrLines}
	stderr.fn = stderr.forward
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// The copying goroutines end when the child's pipes close; a
	// grandchild holding them open must not hang Wait.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	c := &Child{Name: s.Name, cmd: cmd, waited: make(chan struct{}), stderr: stderr}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.waited)
	}()
	timer := time.NewTimer(s.StartTimeout)
	defer timer.Stop()
	var fail error
	select {
	case c.Addr = <-addrs:
		return c, nil
	case <-c.waited:
		fail = fmt.Errorf("%s exited before it was listening (%v)", s.Name, c.waitErr)
	case <-timer.C:
		fail = fmt.Errorf("%s did not say where it listens within %s", s.Name, s.StartTimeout)
	case <-ctx.Done():
		fail = ctx.Err()
	}
	c.kill()
	if head := stderr.head(); head != "" {
		fail = fmt.Errorf("%w; its stderr began:\n%s", fail, head)
	}
	return nil, fail
}

// Stop sends SIGTERM and waits for the child to exit; after grace it kills
// it. It returns an error when the child had to be killed or exited with a
// failure. Calling Stop again returns the same outcome.
func (c *Child) Stop(grace time.Duration) error {
	if !c.stopped {
		c.stopped = true
		select {
		case <-c.waited:
			return c.exitError()
		default:
		}
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			c.kill()
			return fmt.Errorf("%s: signal: %w (killed)", c.Name, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-c.waited:
		case <-timer.C:
			c.kill()
			return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", c.Name, grace)
		}
	}
	<-c.waited
	return c.exitError()
}

func (c *Child) exitError() error {
	if c.waitErr != nil {
		return fmt.Errorf("%s: %w", c.Name, c.waitErr)
	}
	return nil
}

// PID is the child's process id.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// StderrLines is how many lines the child wrote to stderr so far.
func (c *Child) StderrLines() int { return c.stderr.count() }

func (c *Child) kill() {
	c.stopped = true
	c.cmd.Process.Kill()
	<-c.waited
}

// ChildEnv returns env without the variables for which drop reports true,
// followed by add.
func ChildEnv(env []string, drop func(name string) bool, add ...string) []string {
	out := make([]string, 0, len(env)+len(add))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if drop(name) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, add...)
}

// lineWriter splits what a child writes into lines and hands each to fn.
// It is also the stderr forwarder (forward), which keeps the first lines.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	fn      func(line string)

	name  string
	out   io.Writer
	keep  int
	lines int
	first bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
		w.fn(line)
	}
	// A child that writes an endless line must not grow us without bound.
	if len(w.partial) > 64<<10 {
		w.fn(string(w.partial))
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

// forward is fn for stderr; it runs with w.mu held.
func (w *lineWriter) forward(line string) {
	w.lines++
	if w.lines <= 20 {
		w.first.WriteString(line)
		w.first.WriteByte('\n')
	}
	if w.out == nil {
		return
	}
	if w.lines <= w.keep {
		fmt.Fprintf(w.out, "[%s] %s\n", w.name, line)
	} else if w.lines == w.keep+1 {
		fmt.Fprintf(w.out, "[%s] (further stderr lines are only counted)\n", w.name)
	}
}

func (w *lineWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines
}

func (w *lineWriter) head() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first.String()
}
