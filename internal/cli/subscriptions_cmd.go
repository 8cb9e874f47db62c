package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"hookd/internal/engine"
)

// subscriptionView is the API's subscription, as the server renders it.
type subscriptionView = engine.SubscriptionView

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newSubscriptionsCmd() *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:     "subscriptions",
		Aliases: []string{"subscription", "subs"},
		Short:   "List, create, change and delete subscriptions through the admin API",
	}
	addConnFlags(cmd, &conn)
	cmd.AddCommand(newSubscriptionsListCmd(&conn), newSubscriptionsGetCmd(&conn), newSubscriptionsCreateCmd(&conn),
		newSubscriptionsUpdateCmd(&conn), newSubscriptionsDeleteCmd(&conn))
	return cmd
}

func subscriptionPath(id string) string {
	return "/api/v1/subscriptions/" + url.PathEscape(id)
}

func newSubscriptionsListCmd(conn *connFlags) *cobra.Command {
	return newListCmd(conn, listVerb[subscriptionView]{
		use:    "list",
		all:    true,
		short:  "List subscriptions, oldest first",
		path:   "/api/v1/subscriptions",
		header: "ID\tSOURCE\tDESTINATION\tEVENTS\tACTIVE\tORIGIN",
		row: func(s *subscriptionView) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", s.ID, s.Source, s.Destination, truncate(strings.Join(s.Events, ","), 60),
				yesNo(s.Active), s.Origin)
		},
	})
}

func newSubscriptionsGetCmd(conn *connFlags) *cobra.Command {
	return newGetCmd(conn, "get ID", "Show a subscription", subscriptionPath, printSubscription)
}

func printSubscription(w io.Writer, s *subscriptionView) {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", s.ID)
	fmt.Fprintf(tw, "origin:\t%s\n", s.Origin)
	fmt.Fprintf(tw, "source:\t%s\n", s.Source)
	fmt.Fprintf(tw, "destination:\t%s\n", s.Destination)
	fmt.Fprintf(tw, "events:\t%s\n", strings.Join(s.Events, ", "))
	fmt.Fprintf(tw, "skip_stale:\t%t\n", s.SkipStale)
	fmt.Fprintf(tw, "active:\t%t\n", s.Active)
	fmt.Fprintf(tw, "created_at:\t%s\n", fmtTime(s.CreatedAt))
	fmt.Fprintf(tw, "updated_at:\t%s\n", fmtTime(s.UpdatedAt))
	tw.Flush()
	printJSONSection(w, "filter", s.Filter)
}

func newSubscriptionsCreateCmd(conn *connFlags) *cobra.Command {
	return newSpecCmd(conn, specVerb[subscriptionView]{
		use:   "create -f FILE",
		short: "Create a subscription from a JSON or YAML definition (- reads stdin) and print its id",
		long: `Create a subscription from a JSON or YAML definition (- reads stdin) and print its id.
The definition is
  {"source": "app", "destination": "orders", "events": ["order.*"]}
with optional filter, skip_stale and active; or the providers' shape
  {"active": true, "events": ["*"], "url": "https://example.com/hooks"}
which creates an http destination for the subscription as well.`,
		args:   cobra.NoArgs,
		method: http.MethodPost,
		path:   func([]string) string { return "/api/v1/subscriptions" },
		done:   func(s *subscriptionView, _ []string) string { return s.ID },
	})
}

func newSubscriptionsUpdateCmd(conn *connFlags) *cobra.Command {
	return newSpecCmd(conn, specVerb[subscriptionView]{
		use:    "update ID -f FILE",
		short:  "Replace a subscription's definition with a JSON or YAML one (- reads stdin)",
		args:   cobra.ExactArgs(1),
		method: http.MethodPut,
		path:   func(args []string) string { return subscriptionPath(args[0]) },
		done:   func(s *subscriptionView, _ []string) string { return "updated " + s.ID },
	})
}

func newSubscriptionsDeleteCmd(conn *connFlags) *cobra.Command {
	return newDeleteCmd(conn, "delete ID", "Delete a subscription", subscriptionPath)
}
