package cli

// Verbs shared by the resources the admin API manages (destinations,
// subscriptions): definitions read from -f and sent as JSON, deletes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"
)

// specVerb describes a create or update verb: it sends the JSON
// definition of -f with method to path(args) and, in table output, prints
// done(answer, args).
type specVerb[V any] struct {
	use, short, long string
	args             cobra.PositionalArgs
	method           string
	path             func(args []string) string
	done             func(v *V, args []string) string
}

func newSpecCmd[V any](conn *connFlags, sv specVerb[V]) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use: sv.use, Short: sv.short, Long: sv.long, Args: sv.args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			spec, err := readSpec(cmd, file)
			if err != nil {
				return err
			}
			var v V
			raw, err := sendSpec(cmd.Context(), c, sv.method, sv.path(args), spec, &v)
			if err != nil {
				return fail(cmd, err)
			}
			if c.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintln(cmd.OutOrStdout(), sv.done(&v, args))
			return nil
		},
	}
	addFileFlag(cmd, &file)
	return cmd
}

// listVerb describes a list verb: GET path with the query query builds
// (nil: none), then a table of header and one row per item, and a
// "next: CURSOR" line when there is a next page (or, with -o json, the
// API's JSON as is).
type listVerb[V any] struct {
	use, short string
	path       string
	query      func() url.Values
	header     string
	row        func(*V) string
	// all follows next_cursor until the last page and shows every item
	// (the listings of sources, destinations and subscriptions).
	all bool
}

// maxListPages bounds the pages a list verb with all follows.
const maxListPages = 10000

// listPageSize is the page size a list verb with all asks for (the API's
// most; tests make it small).
var listPageSize = 1000

func newListCmd[V any](conn *connFlags, lv listVerb[V]) *cobra.Command {
	return &cobra.Command{
		Use:   lv.use,
		Short: lv.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			var q url.Values
			if lv.query != nil {
				q = lv.query()
			}
			var page listView[V]
			var raw json.RawMessage
			if lv.all {
				raw, err = getAll(cmd.Context(), c, lv.path, q, &page)
			} else {
				raw, err = c.get(cmd.Context(), lv.path, q, &page)
			}
			if err != nil {
				return fail(cmd, err)
			}
			out := cmd.OutOrStdout()
			if c.output == "json" {
				return printJSON(out, raw)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, lv.header)
			for i := range page.Data {
				fmt.Fprintln(tw, lv.row(&page.Data[i]))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != nil {
				fmt.Fprintf(out, "next: %s\n", *page.NextCursor)
			}
			return nil
		},
	}
}

// getAll reads every page of a listing into page, following next_cursor,
// and returns the whole listing as one page's JSON.
func getAll[V any](ctx context.Context, c *apiClient, path string, q url.Values, page *listView[V]) (json.RawMessage, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("limit", strconv.Itoa(listPageSize))
	all := listView[json.RawMessage]{Data: []json.RawMessage{}}
	for range maxListPages {
		var p listView[json.RawMessage]
		if _, err := c.get(ctx, path, q, &p); err != nil {
			return nil, err
		}
		all.Data = append(all.Data, p.Data...)
		if p.NextCursor == nil || *p.NextCursor == q.Get("cursor") {
			break
		}
		q.Set("cursor", *p.NextCursor)
	}
	raw, err := json.Marshal(all)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, page); err != nil {
		return nil, fmt.Errorf("unexpected answer to GET %s: %v", path, err)
	}
	return raw, nil
}

// pageQuery adds the paging parameters to q.
func pageQuery(q url.Values, limit int, cursor string) url.Values {
	setQ(q, "cursor", cursor)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// newGetCmd is a get verb: GET path(ID), then print the answer (or, with
// -o json, the API's JSON as is).
func newGetCmd[V any](conn *connFlags, use, short string, path func(string) string, print func(io.Writer, *V)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			var v V
			raw, err := c.get(cmd.Context(), path(args[0]), nil, &v)
			if err != nil {
				return fail(cmd, err)
			}
			if c.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			print(cmd.OutOrStdout(), &v)
			return nil
		},
	}
}

// newDeleteCmd is a delete verb: DELETE path(ID), then "deleted ID".
func newDeleteCmd(conn *connFlags, use, short string, path func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client(cmd)
			if err != nil {
				return err
			}
			if err := deleteNoContent(cmd.Context(), c, path(args[0])); err != nil {
				return fail(cmd, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
}

// addFileFlag adds -f/--file, the definition of create and update.
func addFileFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVarP(file, "file", "f", "", "definition file, JSON or YAML (by its extension, or its content), or - for stdin (required)")
}

// readSpec reads the definition named by -f (- is stdin), JSON or YAML,
// as JSON; the error is already printed.
func readSpec(cmd *cobra.Command, file string) (json.RawMessage, error) {
	var b []byte
	var err error
	switch file {
	case "":
		return nil, failf(cmd, "-f FILE is required (a JSON or YAML file, or - for stdin)")
	case "-":
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxAnswer))
		file = "stdin"
	default:
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fail(cmd, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, failf(cmd, "%s is empty", file)
	}
	if specIsYAML(file, b) {
		j, err := yamlToJSON(b)
		if err != nil {
			return nil, failf(cmd, "%s is not a valid YAML definition: %v", file, err)
		}
		return j, nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, failf(cmd, "%s is not valid JSON: %v", file, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, failf(cmd, "%s is not a JSON object", file)
	}
	return b, nil
}

// sendSpec sends a JSON definition and decodes the answer into v.
func sendSpec(ctx context.Context, c *apiClient, method, path string, spec json.RawMessage, v any) (json.RawMessage, error) {
	raw, err := c.do(ctx, method, path, nil, spec)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("unexpected answer to %s %s: %v", method, path, err)
	}
	return raw, nil
}

// deleteNoContent sends DELETE path; the answer is 204 without a body.
func deleteNoContent(ctx context.Context, c *apiClient, path string) error {
	_, err := c.do(ctx, http.MethodDelete, path, nil, nil)
	return err
}
