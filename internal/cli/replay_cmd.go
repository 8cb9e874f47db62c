package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// replayPollInterval is how often hookd replay asks for the job's progress.
var replayPollInterval = 200 * time.Millisecond

// replayJobView is the API's replay job.
type replayJobView struct {
	ID         string          `json:"id"`
	Filter     json.RawMessage `json:"filter"`
	State      string          `json:"state"`
	Total      int64           `json:"total"`
	Done       int64           `json:"done"`
	Queued     int64           `json:"queued"`
	Error      string          `json:"error"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
}

// replayRequestBody is the filter of POST /api/v1/replays; empty keys are
// left out.
type replayRequestBody struct {
	Source      string `json:"source,omitempty"`
	Type        string `json:"type,omitempty"`
	Since       string `json:"since,omitempty"`
	Until       string `json:"until,omitempty"`
	Status      string `json:"status,omitempty"`
	Destination string `json:"destination,omitempty"`
}

func newReplayCmd() *cobra.Command {
	var conn connFlags
	var f replayRequestBody
	var noWait bool
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Send events (or the deliveries in a status) again, with progress",
		Long: `Replay starts a bulk replay on the server and follows it with a progress bar
on stderr until it is done.

Without --status it replays the events matching the filter to the
destinations of the subscriptions they match now; with --status (such as
failed) it queues again the deliveries in that status. Events keep their id:
receivers dedupe by webhook-id.`,
		Example: `  hookd replay --source stripe --since 2026-01-02T00:00:00Z
  hookd replay --status failed --destination billing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			now := time.Now()
			f.Since, f.Until = relTime(f.Since, now), relTime(f.Until, now)
			raw, err := c.do(ctx, http.MethodPost, "/api/v1/replays", nil, f)
			if err != nil {
				return fail(cmd, err)
			}
			var job replayJobView
			if err := json.Unmarshal(raw, &job); err != nil || job.ID == "" {
				return failf(cmd, "unexpected answer to POST /api/v1/replays from %s", c.base)
			}
			if noWait {
				if c.output == "json" {
					return printJSON(out, raw)
				}
				fmt.Fprintf(out, "replay %s: %s\n", job.ID, job.State)
				return nil
			}
			return followReplay(cmd, c, job, raw)
		},
	}
	addConnFlags(cmd, &conn)
	cmd.AddCommand(newReplayGetCmd(&conn))
	fl := cmd.Flags()
	fl.StringVar(&f.Source, "source", "", "only events of this source")
	fl.StringVar(&f.Type, "type", "", "only events of this type, or matching this pattern (order.*)")
	fl.StringVar(&f.Since, "since", "", "only events received at or after this time (RFC 3339, or a duration ago: 1h)")
	fl.StringVar(&f.Until, "until", "", "only events received before this time (RFC 3339, or a duration ago: 10m)")
	fl.StringVar(&f.Status, "status", "", "replay the deliveries in this status (such as failed) instead of the events")
	fl.StringVar(&f.Destination, "destination", "", "only to this destination")
	fl.BoolVar(&noWait, "no-wait", false, "start the replay and exit, without following its progress")
	return cmd
}

// followReplay shows the progress of job (its answer raw) on stderr until
// it is no longer running, then prints its outcome; a failed replay is an
// error.
func followReplay(cmd *cobra.Command, c *apiClient, job replayJobView, raw json.RawMessage) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	bar := newProgress(cmd.ErrOrStderr(), "replay "+job.ID)
	bar.update(job.Done, job.Total)
	tick := time.NewTicker(replayPollInterval)
	defer tick.Stop()
	for job.State == "running" {
		select {
		case <-ctx.Done():
			return failf(cmd, "%v (replay %s goes on on the server)", ctx.Err(), job.ID)
		case <-tick.C:
		}
		var err error
		if raw, err = c.get(ctx, replayPath(job.ID), nil, &job); err != nil {
			if bar.tty {
				fmt.Fprintln(bar.w)
			}
			return fail(cmd, err)
		}
		if job.State == "running" {
			bar.update(job.Done, job.Total)
		}
	}
	bar.finish(job.Done, job.Total, job.State)
	if c.output == "json" {
		if err := printJSON(out, raw); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "replay %s: %s, %d/%d processed, %d deliveries queued\n", job.ID, job.State, job.Done, job.Total, job.Queued)
	}
	return replayFailed(cmd, job)
}

// replayFailed is the error of a failed replay, or nil.
func replayFailed(cmd *cobra.Command, job replayJobView) error {
	if job.State != "failed" {
		return nil
	}
	msg := job.Error
	if msg == "" {
		msg = "no reason given"
	}
	return failf(cmd, "replay %s failed: %s", job.ID, msg)
}

func replayPath(id string) string { return "/api/v1/replays/" + url.PathEscape(id) }
