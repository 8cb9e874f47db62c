package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"hookd/internal/admin"
	"hookd/internal/config"
	"hookd/internal/store/postgres"
	"hookd/internal/store/sqlite"
)

func newAdminTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin-token",
		Short: "Manage the generated admin token",
		Args:  cobra.NoArgs,
	}
	var configPath, data string
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Make a new generated admin token and invalidate the old one",
		Long: `Make a new generated admin token, print it once, and invalidate the old one.

hookd keeps only a hash of the token it generated, so a lost token cannot be
shown again: make a new one. The command writes to the database directly,
with the same --config and --data as hookd serve (for SQLite, the data
directory; for PostgreSQL, storage.dsn). It works whether or not a server is
running: a running hookd takes the new token within a second, and the old one
gets 401 from then on.

Tokens in admin.tokens or HOOKD_ADMIN_TOKEN are not affected; while any is
set, the generated token is not used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return err
			}
			if data != "" {
				cfg.Storage.Path = data
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("config: %w", err)
			}
			tok := "hk_admin_" + randomToken()
			if err := putSetting(cmd.Context(), cfg, admin.TokenSetting, admin.HashToken(tok)); err != nil {
				return fmt.Errorf("reset the admin token: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "admin token: %s\n", tok)
			fmt.Fprintln(cmd.ErrOrStderr(), "This is the only time it is shown: hookd keeps only its hash. The old token no longer works (a running hookd takes the change within a second).")
			if len(cfg.Admin.Tokens) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "Note: admin.tokens (or HOOKD_ADMIN_TOKEN) is set; hookd uses those and not the generated token while it is.")
			}
			return nil
		},
	}
	f := reset.Flags()
	f.StringVarP(&configPath, "config", "c", "", "configuration file (YAML), as given to hookd serve")
	f.StringVar(&data, "data", "", "SQLite data directory, as given to hookd serve (overrides storage.path and HOOKD_DATA)")
	reset.MarkFlagFilename("config", "yaml", "yml")
	reset.MarkFlagDirname("data")
	cmd.AddCommand(reset)
	return cmd
}

// putSetting writes one setting to the configured database without
// starting hookd; a server may be running on it.
func putSetting(ctx context.Context, cfg *config.Config, name, value string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	switch cfg.Storage.Driver {
	case "sqlite":
		return sqlite.SettingPutFile(ctx, cfg.Storage.Path, name, value)
	case "postgres":
		st, err := postgres.Open(ctx, cfg.Storage.DSN, slog.New(slog.DiscardHandler), postgres.Options{})
		if err != nil {
			return err
		}
		defer st.Close()
		return st.SettingPut(ctx, name, value)
	default:
		return fmt.Errorf("storage.driver %q is not available in this build (use sqlite or postgres)", cfg.Storage.Driver)
	}
}
