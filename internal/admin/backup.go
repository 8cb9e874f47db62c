package admin

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"hookd"
	"hookd/internal/backup"
)

// BackupFunc writes a backup archive of the store to w (package backup's
// format); withKey says whether it holds the generated master key. It
// returns an error before writing anything when the store cannot be
// backed up this way.
type BackupFunc func(ctx context.Context, w io.Writer, withKey bool) error

// backupWriteIdle bounds how long one write of a backup's stream may
// wait for the client. The server's write_timeout would cut a large
// stream; instead, past backupGrace the client must have read at least
// backupMinRate bytes a second on average, or the backup is cut: while it
// is sent, retention gives up no log segment, and a client that reads a
// byte now and then must not hold that off for long.
const (
	backupWriteIdle = time.Minute
	backupGrace     = time.Minute
	backupMinRate   = 256 << 10
)

// errBackupTooSlow ends a backup whose client reads too slowly.
var errBackupTooSlow = hookd.Errorf(hookd.ETimeout, "backup: the client reads slower than %d KiB/s", backupMinRate>>10)

// postBackup streams a backup of the store: POST /api/v1/backup, with
// ?master_key=false to leave the generated master key out. An error
// before the first byte is answered as usual; one after it cuts the
// connection, so that the client sees an archive without its manifest.
func (a *API) postBackup(w http.ResponseWriter, r *http.Request) error {
	withKey := true
	if v := r.URL.Query().Get("master_key"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return hookd.Errorf(hookd.EInvalid, "master_key: want true or false")
		}
		withKey = b
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // the copy of the database comes first
	bw := &backupWriter{w: w, rc: rc, now: time.Now}
	err := a.backup(r.Context(), bw, withKey)
	if err == nil {
		return nil
	}
	if !bw.started {
		return err
	}
	if a.log != nil {
		a.log.Error("backup failed while it was being sent", "err", err)
	}
	panic(http.ErrAbortHandler)
}

// backupWriter sends the answer's headers with the first byte, and gives
// each write its own deadline.
type backupWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	now     func() time.Time
	start   time.Time
	written int64
}

func (b *backupWriter) Write(p []byte) (int, error) {
	// The rate is counted from the first byte: copying the database
	// before it is hookd's own time, not the client's.
	if el := b.now().Sub(b.start); b.started && el > backupGrace && float64(b.written) < el.Seconds()*backupMinRate {
		return 0, errBackupTooSlow
	}
	if !b.started {
		b.started = true
		b.start = b.now()
		b.w.Header().Set("Content-Type", backup.ContentType)
		b.w.Header().Set("Content-Disposition", `attachment; filename="hookd-backup.tar"`)
		b.w.Header().Set("Cache-Control", "no-store")
		b.w.WriteHeader(http.StatusOK)
	}
	b.rc.SetWriteDeadline(b.now().Add(backupWriteIdle))
	n, err := b.w.Write(p)
	b.written += int64(n)
	return n, err
}
