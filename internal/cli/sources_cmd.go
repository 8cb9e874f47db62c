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

// sourceView is the API's source, as the server renders it.
type sourceView = engine.SourceView

func newSourcesCmd() *cobra.Command {
	var conn connFlags
	cmd := &cobra.Command{
		Use:     "sources",
		Aliases: []string{"source", "src"},
		Short:   "List, create, change and delete sources through the admin API",
	}
	addConnFlags(cmd, &conn)
	cmd.AddCommand(newSourcesListCmd(&conn), newSourcesGetCmd(&conn), newSourcesCreateCmd(&conn),
		newSourcesUpdateCmd(&conn), newSourcesDeleteCmd(&conn))
	return cmd
}

func newSourcesListCmd(conn *connFlags) *cobra.Command {
	return newListCmd(conn, listVerb[sourceView]{
		use:    "list",
		all:    true,
		short:  "List sources: where they receive and how they verify",
		path:   "/api/v1/sources",
		header: "NAME\tORIGIN\tPATH\tVERIFY\tDEDUPE_WINDOW\tMAX_BODY",
		row: func(s *sourceView) string {
			verify := strings.Join(s.Verify, ",")
			if verify == "" {
				verify = "none"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d", s.Name, s.Origin, s.Path, verify, s.DedupeWindow, s.MaxBody)
		},
	})
}

func sourcePath(name string) string { return "/api/v1/sources/" + url.PathEscape(name) }

func newSourcesGetCmd(conn *connFlags) *cobra.Command {
	return newGetCmd(conn, "get NAME", "Show a source with its definition (secrets redacted)", sourcePath, printSource)
}

func printSource(w io.Writer, s *sourceView) {
	tw := newTable(w)
	fmt.Fprintf(tw, "name:\t%s\n", s.Name)
	fmt.Fprintf(tw, "origin:\t%s\n", s.Origin)
	fmt.Fprintf(tw, "path:\t%s\n", s.Path)
	fmt.Fprintf(tw, "verify:\t%s\n", strings.Join(s.Verify, ", "))
	fmt.Fprintf(tw, "dedupe_window:\t%s\n", s.DedupeWindow)
	fmt.Fprintf(tw, "max_body:\t%d\n", s.MaxBody)
	if s.CreatedAt != nil {
		fmt.Fprintf(tw, "created_at:\t%s\n", fmtTimePtr(s.CreatedAt))
		fmt.Fprintf(tw, "updated_at:\t%s\n", fmtTimePtr(s.UpdatedAt))
	}
	tw.Flush()
	printJSONSection(w, "definition", s.Definition)
}

func newSourcesCreateCmd(conn *connFlags) *cobra.Command {
	return newSpecCmd(conn, specVerb[sourceView]{
		use:   "create -f FILE",
		short: "Create a source from a JSON or YAML definition (- reads stdin)",
		long: `Create a source from a JSON or YAML definition: the keys of a source in the
configuration file, for example
  {"name": "shop", "verify": [{"type": "api_key", "keys": ["..."]}],
   "event": {"id": "header:Idempotency-Key", "type": "json:type"}}
It receives at POST /in/NAME as soon as it is created. Its secrets are
stored encrypted and shown redacted.`,
		args:   cobra.NoArgs,
		method: http.MethodPost,
		path:   func([]string) string { return "/api/v1/sources" },
		done:   func(s *sourceView, _ []string) string { return "created " + s.Name + ", receiving at " + s.Path },
	})
}

func newSourcesUpdateCmd(conn *connFlags) *cobra.Command {
	return newSpecCmd(conn, specVerb[sourceView]{
		use:    "update NAME -f FILE",
		short:  "Replace a source's definition with a JSON or YAML one (- reads stdin)",
		args:   cobra.ExactArgs(1),
		method: http.MethodPut,
		path:   func(args []string) string { return sourcePath(args[0]) },
		done:   func(s *sourceView, _ []string) string { return "updated " + s.Name },
	})
}

func newSourcesDeleteCmd(conn *connFlags) *cobra.Command {
	return newDeleteCmd(conn, "delete NAME", "Delete a source: it answers 404 from then on (its subscriptions must be deleted first; its events stay)", sourcePath)
}
