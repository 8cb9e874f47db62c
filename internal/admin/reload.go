package admin

import (
	"context"
	"net/http"

	"hookd/internal/httpserver"
)

// ReloadResult is the answer of POST /api/v1/reload: what reading the
// configuration file again changed.
type ReloadResult struct {
	// File is the configuration file read.
	File string `json:"file"`
	// Changes lists what changed in place ("destination orders changed");
	// empty when the file's definitions were already in force.
	Changes []string `json:"changes"`
	// NeedsRestart names the keys the file changes that take effect only
	// at the next start ("listen", "storage.path"); they keep their
	// running values meanwhile.
	NeedsRestart []string `json:"needs_restart"`
}

// reloadConfig is POST /api/v1/reload: hookd reads its configuration file
// again. An invalid file is refused with the reason (400) and the running
// configuration kept.
func (a *API) reloadConfig(w http.ResponseWriter, r *http.Request) error {
	res, err := a.reload(r.Context())
	if err != nil {
		return err
	}
	if res.Changes == nil {
		res.Changes = []string{}
	}
	if res.NeedsRestart == nil {
		res.NeedsRestart = []string{}
	}
	httpserver.WriteJSON(w, http.StatusOK, res)
	return nil
}

// reloadFunc is Options.Reload.
type reloadFunc = func(ctx context.Context) (*ReloadResult, error)
