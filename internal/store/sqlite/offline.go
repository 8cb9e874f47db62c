package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SettingPutFile stores value under name in the database of the data
// directory dir without opening the store: it touches neither hookd's
// write-ahead log nor anything else, so it is safe while a hookd serve
// uses the directory (SQLite's own locking orders the write with the
// server's). The database must exist (hookd serve has run there once).
// The write is durable when SettingPutFile returns.
func SettingPutFile(ctx context.Context, dir, name, value string) error {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no hookd database at %s (run hookd serve there once, or pass --data or --config)", path)
	} else if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	// mode=rw never creates a file; synchronous=FULL syncs the WAL at the
	// commit; busy_timeout waits for the server's transactions.
	db, err := OpenFile(path, "mode=rw&_journal_mode=WAL&_busy_timeout=10000&_synchronous=FULL")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("store setting %s in %s: %w", name, path, mapErr(err))
	}
	return db.Close()
}
