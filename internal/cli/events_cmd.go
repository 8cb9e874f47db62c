package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"hookd/internal/admin"
)

// eventView is the API's event, as the server renders it.
type eventView = admin.EventJSON

// listView is a page of a listing.
type listView[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func newEventsCmd() *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List and inspect received events through the admin API",
	}
	addConnFlags(cmd, &conn)
	cmd.AddCommand(newEventsListCmd(&conn), newEventsGetCmd(&conn), newEventsReplayCmd(&conn))
	return cmd
}

func newEventsListCmd(conn *connFlags) *cobra.Command {
	var source, typ, since, until, cursor, status, dest, text string
	var limit int
	cmd := newListCmd(conn, listVerb[eventView]{
		use:   "list",
		short: "List events, newest first",
		path:  "/api/v1/events",
		query: func() url.Values {
			q := url.Values{}
			setQ(q, "source", source)
			setQ(q, "type", typ)
			setQ(q, "status", status)
			setQ(q, "destination", dest)
			setQ(q, "since", relTime(since, time.Now()))
			setQ(q, "until", relTime(until, time.Now()))
			setQ(q, "q", text)
			q.Set("body", "false")
			return pageQuery(q, limit, cursor)
		},
		header: "ID\tSOURCE\tTYPE\tRECEIVED",
		row: func(e *eventView) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s", e.ID, e.Source, orDash(e.Type), fmtTime(e.ReceivedAt))
		},
	})
	f := cmd.Flags()
	f.StringVar(&source, "source", "", "only events of this source")
	f.StringVar(&typ, "type", "", "only events of this type, or matching this pattern (order.*, *.created)")
	f.StringVar(&status, "status", "", "only events with a delivery in this status (failed: the failed queue's events)")
	f.StringVar(&dest, "destination", "", "only events with a delivery to this destination (in --status, with it)")
	f.StringVar(&since, "since", "", "only events received at or after this time (RFC 3339, or a duration ago: 1h)")
	f.StringVar(&until, "until", "", "only events received before this time (RFC 3339, or a duration ago: 10m)")
	f.StringVar(&text, "q", "", "only events whose body holds this text, ignoring case (a bounded scan: a page may come short, follow next:)")
	f.IntVar(&limit, "limit", 0, "events per page (server default 50)")
	f.StringVar(&cursor, "cursor", "", "continue after this cursor (the next: line of the previous page)")
	return cmd
}

// relTime turns a duration ("1h", "90m") into the RFC 3339 time that long
// before now; anything else is left for the server to read (or refuse).
func relTime(s string, now time.Time) string {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC().Format(time.RFC3339Nano)
	}
	return s
}

func setQ(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func newEventsGetCmd(conn *connFlags) *cobra.Command {
	return newGetCmd(conn, "get ID", "Show an event with its body and its deliveries", func(id string) string { return "/api/v1/events/" + url.PathEscape(id) }, printEvent)
}

func printEvent(w io.Writer, e *eventView) {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", e.ID)
	fmt.Fprintf(tw, "source:\t%s\n", e.Source)
	fmt.Fprintf(tw, "external_id:\t%s\n", orDash(e.ExternalID))
	fmt.Fprintf(tw, "type:\t%s\n", orDash(e.Type))
	fmt.Fprintf(tw, "key:\t%s\n", orDash(e.Key))
	fmt.Fprintf(tw, "occurred_at:\t%s\n", fmtTimePtr(e.OccurredAt))
	fmt.Fprintf(tw, "received_at:\t%s\n", fmtTime(e.ReceivedAt))
	fmt.Fprintf(tw, "request_id:\t%s\n", e.RequestID)
	fmt.Fprintf(tw, "stale:\t%t\n", e.Stale)
	fmt.Fprintf(tw, "content_type:\t%s\n", e.ContentType)
	fmt.Fprintf(tw, "cursor:\t%s\n", e.Cursor)
	tw.Flush()
	if e.Headers != nil && len(*e.Headers) > 0 {
		headers := *e.Headers
		fmt.Fprintln(w, "\nheaders:")
		names := make([]string, 0, len(headers))
		for k := range headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range headers[k] {
				fmt.Fprintf(w, "  %s: %s\n", k, v)
			}
		}
	}
	switch {
	case e.Body != nil:
		fmt.Fprintln(w, "\nbody:")
		fmt.Fprintln(w, indent(*e.Body, "  "))
	case e.BodyBase64 != nil:
		fmt.Fprintf(w, "\nbody: binary (%d base64 characters; see -o json, or GET /api/v1/events/%s/body)\n", len(*e.BodyBase64), e.ID)
	}
	fmt.Fprintf(w, "\ndeliveries: %d\n", len(e.Deliveries))
	for _, d := range e.Deliveries {
		fmt.Fprintf(w, "  %s  %s  %s  attempts: %d\n", d.ID, d.Destination, d.Status, d.AttemptCount)
		printAttempts(w, d.Attempts, "    ")
	}
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func newEventsReplayCmd(conn *connFlags) *cobra.Command {
	var to []string
	cmd := &cobra.Command{
		Use:   "replay ID --to DESTINATION [--to DESTINATION...]",
		Short: "Send one event again to the destinations named",
		Long: `Replay queues one stored event again to each destination named, whether or
not the event matches its subscriptions now; each destination must have at
least one subscription. The event keeps its id.`,
		Example: `  hookd events replay evt_01J... --to billing --to audit`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			body := map[string][]string{"destinations": to}
			raw, err := c.do(cmd.Context(), http.MethodPost, "/api/v1/events/"+url.PathEscape(args[0])+"/replay", nil, body)
			if err != nil {
				return fail(cmd, err)
			}
			out := cmd.OutOrStdout()
			if c.output == "json" {
				return printJSON(out, raw)
			}
			var l listView[deliveryView]
			if err := json.Unmarshal(raw, &l); err != nil {
				return failf(cmd, "unexpected answer from %s", c.base)
			}
			for _, d := range l.Data {
				fmt.Fprintf(out, "%s %s %s\n", d.ID, d.Destination, d.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&to, "to", nil, "a destination to send the event to (repeat for more)")
	cmd.MarkFlagRequired("to")
	return cmd
}
