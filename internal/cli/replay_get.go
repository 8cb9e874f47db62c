package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// newReplayGetCmd is hookd replay get ID: a replay job's progress, once
// or (--watch) until it is done.
func newReplayGetCmd(conn *connFlags) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a replay's progress (--watch follows it until it is done)",
		Long: `Show a replay job: its state (running, done or failed), how many of the
matching events (or deliveries) it has processed, and how many deliveries it
has queued. With --watch it follows the job with a progress bar on stderr
until it is done, like hookd replay itself.`,
		Example: `  hookd replay --source stripe --no-wait
  hookd replay get rpl_01J… --watch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			var job replayJobView
			raw, err := c.get(cmd.Context(), replayPath(args[0]), nil, &job)
			if err != nil {
				return fail(cmd, err)
			}
			if watch {
				return followReplay(cmd, c, job, raw)
			}
			if c.output == "json" {
				if err := printJSON(cmd.OutOrStdout(), raw); err != nil {
					return err
				}
			} else {
				printReplay(cmd.OutOrStdout(), &job)
			}
			return replayFailed(cmd, job)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the replay until it is done")
	return cmd
}

func printReplay(w io.Writer, j *replayJobView) {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", j.ID)
	fmt.Fprintf(tw, "state:\t%s\n", j.State)
	fmt.Fprintf(tw, "progress:\t%d/%d processed (%d%%)\n", j.Done, j.Total, percent(j.Done, j.Total, j.State != "running"))
	fmt.Fprintf(tw, "queued:\t%d deliveries\n", j.Queued)
	fmt.Fprintf(tw, "started_at:\t%s\n", fmtTime(j.StartedAt))
	if j.FinishedAt != nil {
		fmt.Fprintf(tw, "finished_at:\t%s\n", fmtTimePtr(j.FinishedAt))
	}
	if j.Error != "" {
		fmt.Fprintf(tw, "error:\t%s\n", j.Error)
	}
	tw.Flush()
	if f := strings.TrimSpace(string(j.Filter)); f != "" && f != "null" && f != "{}" {
		fmt.Fprintf(w, "\nfilter:\n  %s\n", j.Filter)
	}
}
