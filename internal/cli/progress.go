package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress shows the progress of long work on w (stderr). On a terminal it
// redraws one line with \r; elsewhere (CI, pipes, files) it prints a plain
// line at most once per interval, and the final line.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	// interval is the least time between two plain lines.
	interval time.Duration
	now      func() time.Time
	width    int

	last     time.Time
	lastLine string
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, tty: isTerminal(w), label: label, interval: time.Second, now: time.Now, width: 30}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// percent is done of total in whole percent, 0 to 100; a total of 0 is
// 0%, or 100% once finished.
func percent(done, total int64, finished bool) int {
	if total <= 0 {
		if finished {
			return 100
		}
		return 0
	}
	return int(min(max(done, 0), total) * 100 / total)
}

func (p *progress) bar(done, total int64, finished bool) string {
	pc := percent(done, total, finished)
	n := pc * p.width / 100
	return fmt.Sprintf("%s [%s%s] %3d%% %d/%d", p.label, strings.Repeat("#", n), strings.Repeat(".", p.width-n), pc, done, total)
}

func (p *progress) line(done, total int64, finished bool) string {
	if total <= 0 && !finished {
		return fmt.Sprintf("%s: counting… %d processed", p.label, done)
	}
	return fmt.Sprintf("%s: %d/%d (%d%%)", p.label, done, total, percent(done, total, finished))
}

// update shows done of total.
func (p *progress) update(done, total int64) {
	if p.tty {
		if s := p.bar(done, total, false); s != p.lastLine {
			p.lastLine = s
			fmt.Fprint(p.w, "\r"+s)
		}
		return
	}
	now := p.now()
	if !p.last.IsZero() && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	fmt.Fprintln(p.w, p.line(done, total, false))
}

// finish shows the final state and ends the line.
func (p *progress) finish(done, total int64, state string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s %s\n", p.bar(done, total, true), state)
		return
	}
	fmt.Fprintf(p.w, "%s %s\n", p.line(done, total, true), state)
}
