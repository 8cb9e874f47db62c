package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"hookd/internal/engine"
)

// destinationView is the API's destination, as the server renders it.
type destinationView = engine.DestinationView

// disabledText is "no", or the reason a destination is disabled.
func disabledText(d *destinationView, n int) string {
	switch {
	case !d.Disabled:
		return "no"
	case d.DisabledReason != "":
		return truncate(d.DisabledReason, n)
	}
	return "yes"
}

func newDestinationsCmd() *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:     "destinations",
		Aliases: []string{"destination", "dest"},
		Short:   "List, create, change and delete destinations through the admin API",
	}
	addConnFlags(cmd, &conn)
	cmd.AddCommand(newDestinationsListCmd(&conn), newDestinationsGetCmd(&conn), newDestinationsCreateCmd(&conn),
		newDestinationsUpdateCmd(&conn), newDestinationsDeleteCmd(&conn), newDestinationsEnableCmd(&conn),
		newDestinationsDisableCmd(&conn), newDestinationsTestCmd(&conn))
	return cmd
}

func newDestinationsTestCmd(conn *connFlags) *cobra.Command {
	var typ, payload, body, ctype string
	cmd := &cobra.Command{
		Use:   "test NAME",
		Short: "Send a test event to a destination: one attempt, its outcome printed",
		Long: `Test sends one test event to the destination, now, outside its queue and
retry policy, and prints what came of the attempt. Nothing is stored. The
body is --payload (JSON), or --body (sent as it is, with --content-type), or
a sample JSON payload. Exits 1 unless the attempt succeeded.`,
		Example: `  hookd destinations test billing --payload '{"order":42}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			req := map[string]any{}
			if typ != "" {
				req["type"] = typ
			}
			if payload != "" {
				if !json.Valid([]byte(payload)) {
					return failf(cmd, "--payload is not valid JSON")
				}
				req["payload"] = json.RawMessage(payload)
			}
			if cmd.Flags().Changed("body") {
				req["body"] = body
			}
			if ctype != "" {
				req["content_type"] = ctype
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, "/api/v1/destinations/"+url.PathEscape(args[0])+"/test", nil, req)
			if err != nil {
				return fail(cmd, err)
			}
			var res engine.TestResult
			if err := json.Unmarshal(raw, &res); err != nil {
				return failf(cmd, "unexpected answer from %s", c.base)
			}
			out := cmd.OutOrStdout()
			if c.output == "json" {
				printJSON(out, raw)
			} else {
				fmt.Fprintf(out, "%s in %.1f ms", res.Outcome, res.DurationMS)
				if res.StatusCode != 0 {
					fmt.Fprintf(out, ", status %d", res.StatusCode)
				}
				if res.Error != "" {
					fmt.Fprintf(out, ": %s", res.Error)
				}
				fmt.Fprintln(out)
			}
			if res.Outcome != "succeeded" {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "the test event's type (default hookd.test)")
	f.StringVar(&payload, "payload", "", "the body, a JSON value")
	f.StringVar(&body, "body", "", "the body, sent as it is (not with --payload)")
	f.StringVar(&ctype, "content-type", "", "the content type of --body (default text/plain)")
	return cmd
}

func newDestinationsListCmd(conn *connFlags) *cobra.Command {
	return newListCmd(conn, listVerb[destinationView]{
		use:    "list",
		all:    true,
		short:  "List destinations with their counters",
		path:   "/api/v1/destinations",
		header: "NAME\tTYPE\tORIGIN\tORDERING\tCONCURRENCY\tDISABLED\tATTEMPTS\tSUCCEEDED\tFAILED",
		row: func(d *destinationView) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d", d.Name, d.Type, d.Origin, d.Ordering, d.Concurrency,
				disabledText(d, 60), d.Attempts, d.Succeeded, d.Failed)
		},
	})
}

func newDestinationsGetCmd(conn *connFlags) *cobra.Command {
	return newGetCmd(conn, "get NAME", "Show a destination with its definition (secrets redacted)", destinationPath, printDestination)
}

func destinationPath(name string) string {
	return "/api/v1/destinations/" + url.PathEscape(name)
}

func printDestination(w io.Writer, d *destinationView) {
	tw := newTable(w)
	fmt.Fprintf(tw, "name:\t%s\n", d.Name)
	fmt.Fprintf(tw, "type:\t%s\n", d.Type)
	fmt.Fprintf(tw, "origin:\t%s\n", d.Origin)
	fmt.Fprintf(tw, "ordering:\t%s\n", d.Ordering)
	if d.HeadTimeout != "" {
		fmt.Fprintf(tw, "head_timeout:\t%s\n", d.HeadTimeout)
	}
	fmt.Fprintf(tw, "concurrency:\t%d\n", d.Concurrency)
	fmt.Fprintf(tw, "retry_policy:\t%s\n", d.Retry)
	fmt.Fprintf(tw, "disabled:\t%t\n", d.Disabled)
	if d.Disabled {
		fmt.Fprintf(tw, "disabled_at:\t%s\n", fmtTimePtr(d.DisabledAt))
		if d.DisabledReason != "" {
			fmt.Fprintf(tw, "disabled_reason:\t%s\n", d.DisabledReason)
		}
	}
	fmt.Fprintf(tw, "in_memory:\t%d\n", d.InMemory)
	fmt.Fprintf(tw, "in_flight:\t%d\n", d.InFlight)
	fmt.Fprintf(tw, "attempts:\t%d\n", d.Attempts)
	fmt.Fprintf(tw, "succeeded:\t%d\n", d.Succeeded)
	fmt.Fprintf(tw, "failed:\t%d\n", d.Failed)
	fmt.Fprintf(tw, "retried:\t%d\n", d.Retried)
	fmt.Fprintf(tw, "created_at:\t%s\n", fmtTime(d.CreatedAt))
	fmt.Fprintf(tw, "updated_at:\t%s\n", fmtTime(d.UpdatedAt))
	tw.Flush()
	printJSONSection(w, "definition", d.Definition)
}

// printJSONSection writes "\nname:" and v as indented JSON under it, unless v
// is absent or null.
func printJSONSection(w io.Writer, name string, v any) {
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil || string(b) == "null" {
		return
	}
	fmt.Fprintf(w, "\n%s:\n  %s\n", name, b)
}

func newDestinationsEnableCmd(conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "enable NAME",
		Short: "Enable a disabled destination: its waiting deliveries are attempted again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, destinationPath(args[0])+"/enable", nil, nil)
			if err != nil {
				return fail(cmd, err)
			}
			if c.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enabled %s\n", args[0])
			return nil
		},
	}
}

func newDestinationsCreateCmd(conn *connFlags) *cobra.Command {
	return newSpecCmd(conn, specVerb[destinationView]{
		use:   "create -f FILE",
		short: "Create a destination from a JSON or YAML definition (- reads stdin)",
		long: `Create a destination from a JSON or YAML definition: the keys of a destination in
the configuration file, for example
  {"name": "orders", "type": "http", "url": "https://example.com/hooks"}`,
		args:   cobra.NoArgs,
		method: http.MethodPost,
		path:   func([]string) string { return "/api/v1/destinations" },
		done:   func(d *destinationView, _ []string) string { return "created " + d.Name },
	})
}

func newDestinationsUpdateCmd(conn *connFlags) *cobra.Command {
	return newSpecCmd(conn, specVerb[destinationView]{
		use:    "update NAME -f FILE",
		short:  "Replace a destination's definition with a JSON or YAML one (- reads stdin)",
		args:   cobra.ExactArgs(1),
		method: http.MethodPut,
		path:   func(args []string) string { return destinationPath(args[0]) },
		done:   func(d *destinationView, _ []string) string { return "updated " + d.Name },
	})
}

func newDestinationsDeleteCmd(conn *connFlags) *cobra.Command {
	return newDeleteCmd(conn, "delete NAME", "Delete a destination (its subscriptions must be deleted first)", destinationPath)
}

func newDestinationsDisableCmd(conn *connFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable a destination: attempts stop and its deliveries wait until it is enabled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, destinationPath(args[0])+"/disable", nil, map[string]string{"reason": reason})
			if err != nil {
				return fail(cmd, err)
			}
			if c.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "disabled %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown with the destination and in its destination.disabled event)")
	return cmd
}
