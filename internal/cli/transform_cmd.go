package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"hookd/internal/transform"
)

// newTransformCmd is hookd transform: JavaScript transformations.
func newTransformCmd() *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "transform",
		Short: "Try JavaScript transformations through the admin API",
	}
	addConnFlags(cmd, &conn)
	cmd.AddCommand(newTransformTestCmd(&conn))
	return cmd
}

// transformTestAnswer is POST /api/v1/transformations/test's answer.
type transformTestAnswer struct {
	Result      json.RawMessage `json:"result"`
	Matched     bool            `json:"matched"`
	FilterError string          `json:"filter_error"`
	Skipped     bool            `json:"skipped"`
	Logs        []string        `json:"logs"`
	Steps       []struct {
		Name       string  `json:"name"`
		DurationMS float64 `json:"duration_ms"`
	} `json:"steps"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error"`
	Retriable  bool    `json:"retriable"`
}

// newTransformTestCmd is hookd transform test: one run of a script on a
// stored event or a sample, nothing sent.
func newTransformTestCmd(conn *connFlags) *cobra.Command {
	var eventID, file, script, subscription, filterExpr, enrich string
	cmd := &cobra.Command{
		Use:   "test (--event ID | --file sample.json) [--filter-expr EXPR] [--enrich enrich.yaml] [--script transform.js] [--subscription ID]",
		Short: "Run a delivery's filter, enrichment and transformation on a stored event or a sample and print the result",
		Long: `Test runs what a delivery would on a stored event (--event) or on a sample
(--file: a JSON object {id, source, type, key, headers, body}; - is stdin)
through POST /api/v1/transformations/test, in a delivery's order: the CEL
filter (--filter-expr), the enrichment (--enrich: a JSON or YAML file with
the keys of a subscription's enrich section; the entity is really fetched,
through the egress guard), then the JavaScript transformation (--script: a
function transform(event)). It prints whether the filter matched, what
would be sent, the console.log lines and the time each step took. Nothing
is sent or stored. With --subscription, each step not given is that
subscription's (its transformations with its source's).

The exit status is 1 when a step fails (a syntax error, a throw, the time
limit, a failed fetch of the entity) or is refused (an invalid expression,
an enrich URL the egress guard refuses); 0 otherwise, also when the filter
does not match.`,
		Example: `  hookd transform test --event evt_01J… --script transform.js
  hookd transform test --file sample.json --script transform.js -o json
  hookd transform test --file sample.json --filter-expr 'body.amount > 500' --enrich enrich.yaml --script t.js
  hookd transform test --event evt_01J… --subscription sub_01J…`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			req := map[string]any{}
			switch {
			case (eventID == "") == (file == ""):
				return failf(cmd, "give --event ID or --file sample.json (one of them)")
			case eventID != "":
				req["event_id"] = eventID
			default:
				b, err := readLimited(cmd, file, 1<<20)
				if err != nil {
					return failf(cmd, "--file: %v", err)
				}
				if !json.Valid(b) {
					return failf(cmd, "--file: not valid JSON")
				}
				req["event"] = json.RawMessage(b)
			}
			if script != "" {
				b, err := readLimited(cmd, script, transform.MaxSource)
				if err != nil {
					return failf(cmd, "--script: %v", err)
				}
				req["transform"] = string(b)
			}
			if filterExpr != "" {
				req["filter_expr"] = filterExpr
			}
			if enrich != "" {
				v, err := readEnrich(cmd, enrich)
				if err != nil {
					return failf(cmd, "--enrich: %v", err)
				}
				req["enrich"] = v
			}
			if subscription != "" {
				req["subscription"] = subscription
			}
			if script == "" && subscription == "" && filterExpr == "" && enrich == "" {
				return failf(cmd, "give --script transform.js, --filter-expr EXPR, --enrich FILE or --subscription ID")
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, "/api/v1/transformations/test", nil, req)
			if err != nil {
				return fail(cmd, err)
			}
			var a transformTestAnswer
			if err := json.Unmarshal(raw, &a); err != nil {
				return failf(cmd, "unexpected answer: %v", err)
			}
			if c.output == "json" {
				if err := printJSON(cmd.OutOrStdout(), raw); err != nil {
					return err
				}
			} else {
				printTransformTest(cmd.OutOrStdout(), &a)
			}
			if a.Error != "" {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&eventID, "event", "", "id of a stored event to run on")
	f.StringVar(&file, "file", "", "sample event, a JSON file (- is stdin)")
	f.StringVar(&script, "script", "", "the transformation's JavaScript file")
	f.StringVar(&filterExpr, "filter-expr", "", "a CEL filter expression, checked first")
	f.StringVar(&enrich, "enrich", "", "an enrich section, a JSON or YAML file {url, into, auth, cache, timeout} (- is stdin)")
	f.StringVar(&subscription, "subscription", "", "run this subscription's steps (those not given by the flags above)")
	cmd.MarkFlagFilename("enrich", "json", "yaml", "yml")
	cmd.MarkFlagFilename("script", "js")
	return cmd
}

// readEnrich reads an enrich section from a JSON or YAML file: an object.
func readEnrich(cmd *cobra.Command, name string) (map[string]any, error) {
	b, err := readLimited(cmd, name, 64<<10)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("not JSON or YAML: %v", err)
	}
	if v == nil {
		return nil, fmt.Errorf("want an object {url, into, …}")
	}
	return v, nil
}

// readLimited reads a file (- is stdin) of at most n bytes.
func readLimited(cmd *cobra.Command, name string, n int64) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("more than %d bytes", n)
	}
	return b, nil
}

func printTransformTest(w io.Writer, a *transformTestAnswer) {
	switch {
	case !a.Matched:
		fmt.Fprintln(w, "matched: false (the filter does not match: no delivery; nothing else ran)")
		if a.FilterError != "" {
			fmt.Fprintf(w, "filter error: %s\n", a.FilterError)
		}
	case a.Error != "" && a.Retriable:
		fmt.Fprintf(w, "error: %s (a delivery would retry)\n", a.Error)
	case a.Error != "":
		fmt.Fprintf(w, "error: %s\n", a.Error)
	case a.Skipped:
		fmt.Fprintln(w, "result: null (the delivery would be skipped)")
	default:
		fmt.Fprintln(w, "result:")
		_ = printJSON(w, a.Result)
	}
	if len(a.Logs) > 0 {
		fmt.Fprintln(w, "console.log:")
		for _, l := range a.Logs {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(l, "\n", "\n  "))
		}
	}
	if len(a.Steps) > 0 {
		fmt.Fprintln(w, "steps:")
		for _, s := range a.Steps {
			fmt.Fprintf(w, "  %-24s %.3fms\n", s.Name, s.DurationMS)
		}
	}
	fmt.Fprintf(w, "duration: %.3fms\n", a.DurationMS)
}
