package cli

// completion.go completes the names of sources and destinations and the
// ids of subscriptions from the server, for the shell completion that
// 'hookd completion' installs. It asks the admin API with the command's
// --server and --token (or their environment variables), for at most
// completionTimeout; when it cannot, it offers nothing and says nothing.

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completionTimeout bounds the requests of one completion: a shell waits
// for it.
var completionTimeout = 2 * time.Second

// completionPages bounds the listing pages one completion reads.
const completionPages = 10

// completeNames completes the first argument with the names (ids, for
// subscriptions) of the kind ("sources", "destinations",
// "subscriptions").
func completeNames(kind string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return serverNames(cmd, kind, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFlagNames completes a flag's value with the names of kind.
func completeFlagNames(kind string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return serverNames(cmd, kind, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// serverNames lists the names of kind that start with prefix, each with a
// short description; nil when the server cannot be asked.
func serverNames(cmd *cobra.Command, kind, prefix string) []cobra.Completion {
	flag := func(name, env string) string {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return f.Value.String()
		}
		if v := os.Getenv(env); v != "" {
			return v
		}
		if f := cmd.Flags().Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	server, token := flag("server", envServer), strings.TrimSpace(flag("token", envToken))
	if server == "" {
		server = defaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || token == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	c := &apiClient{base: strings.TrimRight(server, "/"), token: token, hc: &http.Client{Timeout: completionTimeout}}
	var page listView[struct {
		Name        string `json:"name"`
		ID          string `json:"id"`
		Type        string `json:"type"`
		Source      string `json:"source"`
		Destination string `json:"destination"`
	}]
	q := url.Values{"limit": {"1000"}}
	var out []cobra.Completion
	for range completionPages {
		page.Data, page.NextCursor = nil, nil
		if _, err := c.get(ctx, "/api/v1/"+kind, q, &page); err != nil {
			return out
		}
		for _, it := range page.Data {
			name, desc := it.Name, it.Type
			if kind == "subscriptions" {
				src := it.Source
				if src == "" {
					src = "*"
				}
				name, desc = it.ID, src+" → "+it.Destination
			}
			if name == "" || !strings.HasPrefix(name, prefix) || strings.ContainsAny(name, "\t\n") {
				continue
			}
			out = append(out, cobra.CompletionWithDesc(name, desc))
		}
		if page.NextCursor == nil || *page.NextCursor == q.Get("cursor") {
			break
		}
		q.Set("cursor", *page.NextCursor)
	}
	return out
}

// addCompletions attaches the completions of names to the verbs that
// take one, and to the --source, --destination and --to flags.
func addCompletions(root *cobra.Command) {
	kinds := map[string]string{"sources": "sources", "destinations": "destinations", "subscriptions": "subscriptions"}
	for _, group := range root.Commands() {
		if kind, ok := kinds[group.Name()]; ok {
			for _, verb := range group.Commands() {
				switch verb.Name() {
				case "get", "update", "delete", "enable", "disable", "test":
					if verb.ValidArgsFunction == nil {
						verb.ValidArgsFunction = completeNames(kind)
					}
				}
			}
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for flag, kind := range map[string]string{"source": "sources", "destination": "destinations", "to": "destinations"} {
			if c.LocalNonPersistentFlags().Lookup(flag) != nil {
				_ = c.RegisterFlagCompletionFunc(flag, completeFlagNames(kind))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
