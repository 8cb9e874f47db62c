package cli

// client.go is the admin API client of the CLI verbs (events, deliveries,
// replay): the connection flags, requests, and the rendering of errors.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const (
	defaultServer = "http://localhost:8080"
	envServer     = "HOOKD_SERVER"
	envToken      = "HOOKD_ADMIN_TOKEN"
	// requestTimeout bounds one admin API request.
	requestTimeout = 30 * time.Second
	// maxAnswer bounds an admin API answer read into memory.
	maxAnswer = 64 << 20
)

// connFlags are the connection flags every verb group carries.
type connFlags struct {
	server string
	token  string
	output string
}

// addConnFlags adds --server, --token and --output to cmd and its
// subcommands.
func addConnFlags(cmd *cobra.Command, c *connFlags) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.server, "server", defaultServer, "hookd server URL (env "+envServer+")")
	// The token's default is not the environment's value: --help would
	// print it.
	f.StringVar(&c.token, "token", "", "admin token (env "+envToken+"; required)")
	f.StringVarP(&c.output, "output", "o", "table", "output format: table or json")
}

// apiClient calls hookd's admin API.
type apiClient struct {
	base   string
	token  string
	output string
	hc     *http.Client
}

// client resolves the connection flags (flag, then environment, then
// default) into a client; the error is already printed.
func (c *connFlags) client(cmd *cobra.Command) (*apiClient, error) {
	server := c.server
	if f := cmd.Flags().Lookup("server"); (f == nil || !f.Changed) && os.Getenv(envServer) != "" {
		server = os.Getenv(envServer)
	}
	token := c.token
	if f := cmd.Flags().Lookup("token"); (f == nil || !f.Changed) && token == "" {
		token = os.Getenv(envToken)
	}
	token = strings.TrimSpace(token)
	switch c.output {
	case "table", "json":
	default:
		return nil, failf(cmd, "invalid --output %q (want table or json)", c.output)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, failf(cmd, "invalid --server %q (want a URL such as %s)", server, defaultServer)
	}
	if token == "" {
		return nil, failf(cmd, "an admin token is required: pass --token or set %s", envToken)
	}
	return &apiClient{base: strings.TrimRight(server, "/"), token: token, output: c.output,
		hc: &http.Client{Timeout: requestTimeout}}, nil
}

// failf prints "error: …" to stderr and returns the exit error.
func failf(cmd *cobra.Command, format string, args ...any) error {
	fmt.Fprintf(cmd.ErrOrStderr(), "error: "+format+"\n", args...)
	return exitError{code: 1}
}

// fail prints err (see failf).
func fail(cmd *cobra.Command, err error) error {
	return failf(cmd, "%s", err.Error())
}

// apiError is an error answer of the API: {"error":{"code","message"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// do sends one request and returns the answer's body when its status is
// 2xx. body, when not nil, is sent as JSON.
func (c *apiClient) do(ctx context.Context, method, path string, q url.Values, body any) (json.RawMessage, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("invalid request to %s: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach hookd at %s: %v", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %v", c.base, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return nil, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return nil, fmt.Errorf("%s %s answered HTTP %d: %s (is %s a hookd server?)", method, path, resp.StatusCode,
			truncate(strings.TrimSpace(string(b)), 200), c.base)
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s %s answered HTTP %d with invalid JSON (is %s a hookd server?)", method, path, resp.StatusCode, c.base)
	}
	return b, nil
}

// get is do for a GET decoded into v (when not nil).
func (c *apiClient) get(ctx context.Context, path string, q url.Values, v any) (json.RawMessage, error) {
	raw, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("unexpected answer to GET %s: %v", path, err)
		}
	}
	return raw, nil
}

// printJSON writes the API's JSON indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// truncate shortens s to at most n runes, ending with "…" when cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
