package cli

// backup_cmd.go: hookd backup and hookd restore, and the admin API's
// POST /api/v1/backup (docs/BACKUP.md).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hookd"
	"hookd/internal/admin"
	"hookd/internal/backup"
	"hookd/internal/config"
	"hookd/internal/store/sqlite"
)

// postgresBackup is the answer to a backup of a PostgreSQL store.
const postgresBackup = "hookd backup copies the embedded SQLite store; this hookd stores in PostgreSQL: back up the database with pg_dump, or with continuous archiving (point-in-time recovery), see docs/BACKUP.md"

// backupFunc is the admin API's backup of this process's store.
func (a *App) backupFunc() admin.BackupFunc {
	return func(ctx context.Context, w io.Writer, withKey bool) error {
		sq, ok := a.st.(*sqlite.Store)
		if !ok {
			return hookd.Errorf(hookd.EConflict, "%s", postgresBackup)
		}
		return writeBackup(ctx, sq, a.cfg.Storage.Path, w, withKey)
	}
}

// writeBackup writes a backup archive of st, whose data directory is dir,
// to w: the database, the log, then the generated master key (when
// withKey and there is one) and the manifest.
func writeBackup(ctx context.Context, st *sqlite.Store, dir string, w io.Writer, withKey bool) error {
	m := backup.Manifest{Hookd: hookd.Version, CreatedAt: time.Now().UTC(), Driver: "sqlite"}
	bw := backup.NewWriter(w)
	lsn, err := st.Backup(ctx, func(f sqlite.BackupFile) error { return bw.Add(f.Name, f.Size, f.Copy) })
	if err != nil {
		return err
	}
	m.LogLSN = lsn
	if withKey {
		key, err := os.ReadFile(filepath.Join(dir, MasterKeyFile))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("backup: read the master key: %w", err)
		default:
			err := bw.Add(backup.MasterKeyName, int64(len(key)), func(w io.Writer) error {
				_, err := w.Write(key)
				return err
			})
			if err != nil {
				return err
			}
		}
	}
	return bw.Close(m)
}

func newBackupCmd() *cobra.Command {
	var (
		conn             connFlags
		configPath, data string
		noKey            bool
	)
	cmd := &cobra.Command{
		Use:   "backup DIR",
		Short: "Back up the embedded store into a new directory, while hookd serves",
		Long: `Back up hookd's embedded store (SQLite and its write-ahead log) into DIR,
which must not exist or be empty. The backup holds every event acknowledged
before it began, the deliveries, the definitions made through the API, the
settings (the generated admin token's hash) and, unless --without-master-key,
the generated master key that seals the stored secrets: keep it as safe as
the data directory. 'hookd restore' makes a data directory of it.

By default the running hookd takes the backup and streams it here through the
admin API (--server, --token), so DIR may be on another host. With --data or
--config, the command opens the data directory itself instead: only while no
hookd serve uses it.

A hookd on PostgreSQL refuses: back up the database with pg_dump or
point-in-time recovery (docs/BACKUP.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			dir := args[0]
			var (
				m   *backup.Manifest
				err error
			)
			if cmd.Flags().Changed("data") || cmd.Flags().Changed("config") {
				m, err = backupOffline(ctx, configPath, data, dir, !noKey)
			} else {
				conn.output = "table"
				c, cerr := conn.client(cmd)
				if cerr != nil {
					return cerr
				}
				m, err = backupOnline(ctx, c, dir, !noKey)
			}
			if err != nil {
				return fail(cmd, err)
			}
			printManifest(cmd.OutOrStdout(), "backup", dir, m)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&conn.server, "server", defaultServer, "hookd server URL (env "+envServer+")")
	f.StringVar(&conn.token, "token", "", "admin token (env "+envToken+")")
	f.StringVarP(&configPath, "config", "c", "", "back up offline: the configuration file (YAML), as given to hookd serve")
	f.StringVar(&data, "data", "", "back up offline: the SQLite data directory, as given to hookd serve")
	f.BoolVar(&noKey, "without-master-key", false, "leave the generated master key out (a restore then needs it from elsewhere)")
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.MarkFlagDirname("data")
	return cmd
}

// backupOnline asks the server for a backup and extracts it into dir.
func backupOnline(ctx context.Context, c *apiClient, dir string, withKey bool) (*backup.Manifest, error) {
	u := c.base + "/api/v1/backup"
	if !withKey {
		u += "?" + url.Values{"master_key": {"false"}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, fmt.Errorf("invalid request to %s: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	// No overall timeout: a backup takes as long as the store is large.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach hookd at %s: %v", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, answerError(http.MethodPost, "/api/v1/backup", resp.StatusCode, b, c.base)
	}
	if ct := resp.Header.Get("Content-Type"); ct != backup.ContentType {
		return nil, fmt.Errorf("POST /api/v1/backup answered %s, not a backup archive (is %s a hookd server?)", ct, c.base)
	}
	m, err := backup.Extract(resp.Body, dir)
	if err != nil {
		return nil, fmt.Errorf("backup into %s: %w", dir, err)
	}
	return m, nil
}

// answerError is the error of an API answer with a status other than
// 2xx.
func answerError(method, path string, status int, b []byte, base string) error {
	if e := decodeAPIError(b); e != nil {
		e.Status = status
		return e
	}
	return fmt.Errorf("%s %s answered HTTP %d: %s (is %s a hookd server?)", method, path, status,
		truncate(strings.TrimSpace(string(b)), 200), base)
}

// backupOffline opens the data directory itself and backs it up into dir.
func backupOffline(ctx context.Context, configPath, data, dir string, withKey bool) (*backup.Manifest, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, err
	}
	if data != "" {
		cfg.Storage.Path = data
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.Storage.Driver != "sqlite" {
		return nil, errors.New(postgresBackup)
	}
	if _, err := os.Stat(filepath.Join(cfg.Storage.Path, sqlite.FileName)); err != nil {
		return nil, fmt.Errorf("no hookd database in %s: %w", cfg.Storage.Path, err)
	}
	st, err := sqlite.Open(ctx, cfg.Storage.Path, slog.New(slog.DiscardHandler), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w (while hookd serves, take the backup through it: hookd backup DIR --server URL --token TOKEN)", err)
	}
	defer st.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeBackup(ctx, st, cfg.Storage.Path, pw, withKey)
		pw.CloseWithError(err)
		done <- err
	}()
	m, err := backup.Extract(pr, dir)
	pr.CloseWithError(errors.New("backup: extraction ended"))
	werr := <-done
	if err != nil {
		// The writer's error, when there is one, is the cause (Extract
		// then saw the archive end early); otherwise Extract's.
		if werr != nil && !strings.Contains(werr.Error(), "extraction ended") {
			return nil, werr
		}
		return nil, fmt.Errorf("backup into %s: %w", dir, err)
	}
	if werr != nil {
		return nil, werr
	}
	return m, nil
}

func newRestoreCmd() *cobra.Command {
	var configPath, data string
	cmd := &cobra.Command{
		Use:   "restore DIR",
		Short: "Make a new data directory from a backup",
		Long: `Check the backup in DIR (every file against its manifest's size and SHA-256)
and copy it into the data directory given by --data (or --config's
storage.path), which must not exist or be empty. 'hookd serve' on that
directory then starts where the backup was taken.

The backup's master key, when it holds one, comes with it; a backup taken
with --without-master-key, or of a hookd whose keys are configured
(HOOKD_MASTER_KEY, secrets.master_keys), needs the same keys configured.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("data") && !cmd.Flags().Changed("config") {
				return failf(cmd, "give the new data directory: --data DIR (or --config with storage.path)")
			}
			cfg, err := config.Load(configPath)
			if err != nil {
				return fail(cmd, err)
			}
			if data != "" {
				cfg.Storage.Path = data
			}
			if err := cfg.Validate(); err != nil {
				return fail(cmd, fmt.Errorf("config: %w", err))
			}
			if cfg.Storage.Driver != "sqlite" {
				return fail(cmd, errors.New("hookd restore makes a SQLite data directory; this configuration stores in PostgreSQL (restore the database with pg_restore, see docs/BACKUP.md)"))
			}
			m, err := backup.Restore(args[0], cfg.Storage.Path)
			if err != nil {
				return fail(cmd, fmt.Errorf("restore %s: %w", args[0], err))
			}
			printManifest(cmd.OutOrStdout(), "restored", cfg.Storage.Path, m)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "configuration file (YAML): its storage.path is the new data directory")
	f.StringVar(&data, "data", "", "the new SQLite data directory (overrides storage.path and HOOKD_DATA)")
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.MarkFlagDirname("data")
	return cmd
}

// printManifest prints what a backup or restore wrote.
func printManifest(w io.Writer, verb, dir string, m *backup.Manifest) {
	var size int64
	key := "no"
	for _, f := range m.Files {
		size += f.Size
		if f.Name == backup.MasterKeyName {
			key = "yes"
		}
	}
	fmt.Fprintf(w, "%s: %s\n  taken:      %s by hookd %s\n  files:      %d (%d bytes)\n  log record: %d\n  master key: %s\n",
		verb, dir, m.CreatedAt.Format(time.RFC3339), m.Hookd, len(m.Files), size, m.LogLSN, key)
}

// decodeAPIError reads an error answer of the API, nil when b is not one.
func decodeAPIError(b []byte) *apiError {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
		return nil
	}
	return &apiError{Code: e.Error.Code, Message: e.Error.Message}
}
