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
// wait for the client: the stream as a whole has no deadline (the
// server's write_timeout would cut a large one).
const backupWriteIdle = time.Minute

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
	bw := &backupWriter{w: w, rc: rc}
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
}

func (b *backupWriter) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.w.Header().Set("Content-Type", backup.ContentType)
		b.w.Header().Set("Content-Disposition", `attachment; filename="hookd-backup.tar"`)
		b.w.Header().Set("Cache-Control", "no-store")
		b.w.WriteHeader(http.StatusOK)
	}
	b.rc.SetWriteDeadline(time.Now().Add(backupWriteIdle))
	return b.w.Write(p)
}
