package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"hookd/internal/admin"
)

// The API's shapes, as the server renders them.
type (
	deliveryView = admin.DeliveryJSON
	attemptView  = admin.AttemptJSON
)

// lastOutcome is a delivery's last HTTP status, or else its last error.
func lastOutcome(d *deliveryView) string {
	switch {
	case d.LastStatusCode != 0:
		return "HTTP " + strconv.Itoa(d.LastStatusCode)
	case d.LastError != "":
		return truncate(d.LastError, 60)
	}
	return "-"
}

func newDeliveriesCmd() *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:     "deliveries",
		Aliases: []string{"delivery"},
		Short:   "List, inspect, retry and cancel deliveries through the admin API",
	}
	addConnFlags(cmd, &conn)
	cmd.AddCommand(newDeliveriesListCmd(&conn), newDeliveriesGetCmd(&conn), newDeliveriesRetryCmd(&conn), newDeliveriesCancelCmd(&conn))
	return cmd
}

func newDeliveriesListCmd(conn *connFlags) *cobra.Command {
	var status, dest, source, typ, event, cursor string
	var limit int
	cmd := newListCmd(conn, listVerb[deliveryView]{
		use:   "list",
		short: "List deliveries (--status failed is the failed-event queue)",
		path:  "/api/v1/deliveries",
		query: func() url.Values {
			q := url.Values{}
			setQ(q, "status", status)
			setQ(q, "destination", dest)
			setQ(q, "source", source)
			setQ(q, "type", typ)
			setQ(q, "event_id", event)
			return pageQuery(q, limit, cursor)
		},
		header: "ID\tEVENT\tDESTINATION\tSTATUS\tATTEMPTS\tLAST",
		row: func(d *deliveryView) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s", d.ID, d.EventID, d.Destination, d.Status, d.AttemptCount, lastOutcome(d))
		},
	})
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only deliveries in this status: pending, delivering, succeeded, retrying, failed or cancelled")
	f.StringVar(&dest, "destination", "", "only deliveries to this destination")
	f.StringVar(&source, "source", "", "only deliveries of events of this source")
	f.StringVar(&typ, "type", "", "only deliveries of events of this type")
	f.StringVar(&event, "event", "", "only deliveries of this event id")
	f.IntVar(&limit, "limit", 0, "deliveries per page (server default 50)")
	f.StringVar(&cursor, "cursor", "", "continue after this cursor (the next: line of the previous page)")
	return cmd
}

func newDeliveriesGetCmd(conn *connFlags) *cobra.Command {
	return newGetCmd(conn, "get ID", "Show a delivery with its attempts", func(id string) string { return "/api/v1/deliveries/" + url.PathEscape(id) }, printDelivery)
}

func printDelivery(w io.Writer, d *deliveryView) {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", d.ID)
	fmt.Fprintf(tw, "event_id:\t%s\n", d.EventID)
	fmt.Fprintf(tw, "destination:\t%s\n", d.Destination)
	if d.SubscriptionID != "" {
		fmt.Fprintf(tw, "subscription_id:\t%s\n", d.SubscriptionID)
	}
	fmt.Fprintf(tw, "status:\t%s\n", d.Status)
	if d.Reason != "" {
		fmt.Fprintf(tw, "reason:\t%s\n", d.Reason)
	}
	fmt.Fprintf(tw, "attempt_count:\t%d\n", d.AttemptCount)
	fmt.Fprintf(tw, "next_attempt_at:\t%s\n", fmtTimePtr(d.NextAttemptAt))
	fmt.Fprintf(tw, "last_attempt_at:\t%s\n", fmtTimePtr(d.LastAttemptAt))
	if d.LastStatusCode != 0 {
		fmt.Fprintf(tw, "last_status_code:\t%d\n", d.LastStatusCode)
	}
	if d.LastError != "" {
		fmt.Fprintf(tw, "last_error:\t%s\n", d.LastError)
	}
	fmt.Fprintf(tw, "created_at:\t%s\n", fmtTime(d.CreatedAt))
	fmt.Fprintf(tw, "updated_at:\t%s\n", fmtTime(d.UpdatedAt))
	tw.Flush()
	fmt.Fprintf(w, "\nattempts: %d\n", len(d.Attempts))
	printAttempts(w, d.Attempts, "  ")
}

// printAttempts writes attempts as a table, each line after prefix.
func printAttempts(w io.Writer, as []attemptView, prefix string) {
	if len(as) == 0 {
		return
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "%s#\tSTARTED\tDURATION\tSTATUS\tERROR\n", prefix)
	for _, a := range as {
		code := "-"
		if a.StatusCode != 0 {
			code = strconv.Itoa(a.StatusCode)
		}
		errText := "-"
		if a.Error != "" {
			errText = truncate(a.Error, 80)
		}
		fmt.Fprintf(tw, "%s%d\t%s\t%.1fms\t%s\t%s\n", prefix, a.Number, a.StartedAt.Format(time.RFC3339Nano), a.DurationMS, code, errText)
	}
	tw.Flush()
}

func newDeliveriesRetryCmd(conn *connFlags) *cobra.Command {
	return newDeliveriesActionCmd(conn, "retry", "Queue deliveries for another attempt now", "queued")
}

func newDeliveriesCancelCmd(conn *connFlags) *cobra.Command {
	return newDeliveriesActionCmd(conn, "cancel", "Take failed deliveries out of the failed queue (they become cancelled)", "cancelled")
}

// newDeliveriesActionCmd posts /api/v1/deliveries/{id}/action for each id
// and prints "done id" (or the API's JSON); one failure does not stop the
// others, and makes the exit code 1.
func newDeliveriesActionCmd(conn *connFlags, action, short, done string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID [ID...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			failed := 0
			for _, id := range args {
				raw, err := c.do(cmd.Context(), http.MethodPost, "/api/v1/deliveries/"+url.PathEscape(id)+"/"+action, nil, nil)
				if err != nil {
					if len(args) > 1 {
						err = fmt.Errorf("%s %s: %w", action, id, err)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "error: %v\n", err)
					failed++
					continue
				}
				if c.output == "json" {
					printJSON(out, raw)
				} else {
					fmt.Fprintf(out, "%s %s\n", done, id)
				}
			}
			if failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
}
