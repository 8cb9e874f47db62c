package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// maxSendBody bounds the body hookd send reads (the source's max_body
// bounds what is accepted).
const maxSendBody = 256 << 20

// newSendCmd is hookd send SOURCE: one test event posted to a source, the
// way a provider would, and the answer printed.
func newSendCmd() *cobra.Command {
	var server, file, data string
	var headers []string
	cmd := &cobra.Command{
		Use:   "send SOURCE",
		Short: "Post a test event to a source and print the answer",
		Long: `Send posts one request to POST /in/SOURCE on a running hookd, as a provider
would, and prints the answer's status and body. The body is --data, the file
of --file (- is stdin), or else stdin. Content-Type is application/json when
the body is JSON and no -H sets it. No admin token is needed: a source
checks its own verification (pass its credentials or signature with -H).
The exit status is 1 when the answer is not 2xx.`,
		Example: `  hookd send demo -d '{"id":"order-1","type":"order.created"}'
  hookd send shop --file event.json -H 'X-Api-Key: …'
  echo '{"id":"1"}' | hookd send demo`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames("sources"),
		RunE: func(cmd *cobra.Command, args []string) error {
			base, err := serverURL(cmd, server)
			if err != nil {
				return failf(cmd, "%v", err)
			}
			body, err := sendBody(cmd, file, data)
			if err != nil {
				return failf(cmd, "%v", err)
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, base+"/in/"+url.PathEscape(args[0]), bytes.NewReader(body))
			if err != nil {
				return failf(cmd, "%v", err)
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return failf(cmd, "invalid -H %q (want 'Name: value')", h)
				}
				req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			if req.Header.Get("Content-Type") == "" && json.Valid(body) {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := (&http.Client{Timeout: requestTimeout}).Do(req)
			if err != nil {
				var ue *url.Error
				if errors.As(err, &ue) {
					err = ue.Err
				}
				return failf(cmd, "cannot reach hookd at %s: %v", base, err)
			}
			defer resp.Body.Close()
			ans, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
			if err != nil {
				return failf(cmd, "reading the answer of %s: %v", base, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "HTTP %s\n", resp.Status)
			if len(ans) > 0 {
				out.Write(bytes.TrimRight(ans, "\n"))
				fmt.Fprintln(out)
			}
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", defaultServer, "hookd server URL (env "+envServer+")")
	f.StringVarP(&file, "file", "f", "", "file holding the body, or - for stdin")
	f.StringVarP(&data, "data", "d", "", "the body")
	f.StringArrayVarP(&headers, "header", "H", nil, "a request header, 'Name: value' (repeatable)")
	return cmd
}

// serverURL resolves --server (flag, then environment, then default).
func serverURL(cmd *cobra.Command, server string) (string, error) {
	if f := cmd.Flags().Lookup("server"); (f == nil || !f.Changed) && os.Getenv(envServer) != "" {
		server = os.Getenv(envServer)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid --server %q (want a URL such as %s)", server, defaultServer)
	}
	return strings.TrimRight(server, "/"), nil
}

// sendBody is --data, the file of --file, or stdin.
func sendBody(cmd *cobra.Command, file, data string) ([]byte, error) {
	switch {
	case file != "" && data != "":
		return nil, errors.New("--file and --data are exclusive")
	case data != "":
		return []byte(data), nil
	case file != "" && file != "-":
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readBounded(f, file)
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && file == "" {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil, errors.New("no body: pass --data, --file, or pipe it on stdin")
		}
	}
	return readBounded(in, "stdin")
}

func readBounded(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSendBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSendBody {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxSendBody)
	}
	return b, nil
}
