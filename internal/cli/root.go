// Package cli holds hookd's subcommands, one file each. serve.go is the
// composition root: config → store → batcher → handlers → server, and the
// two-stage shutdown.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// exitError carries an exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Main runs the CLI with args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(stderr, "hookd:", oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine puts an error message on one line: some libraries' messages
// span several (one per address tried), and a supervisor's log shows the
// first line alone. Repeated parts are given once.
func oneLine(msg string) string {
	if !strings.ContainsAny(msg, "\r\n") {
		return msg
	}
	var parts []string
	seen := map[string]bool{}
	for _, p := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		p = strings.TrimSpace(p)
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// NewRoot returns the root command with every subcommand.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "hookd",
		Short: "hookd is a self-hosted webhook gateway",
		Long: `hookd receives webhooks the way providers ask their consumers to — verify,
store durably before answering 200, answer fast, dedupe by event id — keeps
them in a durable, replayable log, and delivers them the way a good provider
sends: subscriptions, signatures, OAuth, classified retries, a failed queue and
replay.

Run 'hookd serve' to start it on the embedded default (SQLite in ./hookd-data,
listening on :8080), or on PostgreSQL with storage.driver: postgres. The other
commands (events, deliveries, replay, sources, destinations, subscriptions)
drive a running hookd through its admin API; 'hookd admin-token reset' writes a
new generated admin token to the database itself (same --config and --data as
serve), 'hookd backup' and 'hookd restore' copy the embedded store while it
serves and make a data directory of the copy, and 'hookd bench' measures.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	setVersionFlag(root)
	root.AddCommand(newServeCmd(), newReloadCmd(), newVersionCmd(), newHealthcheckCmd(), newBenchCmd(), newAdminTokenCmd(), newBackupCmd(), newRestoreCmd())
	root.AddCommand(newEventsCmd(), newDeliveriesCmd(), newReplayCmd(), newSourcesCmd(), newDestinationsCmd(), newSubscriptionsCmd())
	root.AddCommand(newSendCmd(), newTransformCmd())
	addCompletions(root)
	return root
}
