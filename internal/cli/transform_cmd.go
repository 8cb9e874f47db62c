package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

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
	Result     json.RawMessage `json:"result"`
	Skipped    bool            `json:"skipped"`
	Logs       []string        `json:"logs"`
	DurationMS float64         `json:"duration_ms"`
	Error      string          `json:"error"`
}

// newTransformTestCmd is hookd transform test: one run of a script on a
// stored event or a sample, nothing sent.
func newTransformTestCmd(conn *connFlags) *cobra.Command {
	var eventID, file, script, subscription string
	cmd := &cobra.Command{
		Use:   "test (--event ID | --file sample.json) [--script transform.js | --subscription ID]",
		Short: "Run a transformation on a stored event or a sample and print the result",
		Long: `Test runs a JavaScript transformation (a function transform(event)) on a
stored event (--event) or on a sample (--file: a JSON object {id, source,
type, key, headers, body}; - is stdin) through POST
/api/v1/transformations/test, and prints what would be sent, the console.log
lines and the time taken. Nothing is sent or stored. With --subscription and
no --script, the transformations of that subscription (and of the event's
source) run, as a delivery attempt would run them. The exit status is 1 when
the transformation fails (a syntax error, a throw, the time limit).`,
		Example: `  hookd transform test --event evt_01J… --script transform.js
  hookd transform test --file sample.json --script transform.js -o json
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
			if subscription != "" {
				req["subscription"] = subscription
			}
			if script == "" && subscription == "" {
				return failf(cmd, "give --script transform.js or --subscription ID")
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
	f.StringVar(&subscription, "subscription", "", "run this subscription's transformations (without --script)")
	return cmd
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
	fmt.Fprintf(w, "duration: %.3fms\n", a.DurationMS)
}
