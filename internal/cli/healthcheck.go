package cli

// healthcheck.go is hookd healthcheck: a probe for container health checks
// (an image built FROM scratch has no curl), which GETs /healthz of the
// hookd listening on this host and exits 0 when it answers 200, 1
// otherwise.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"hookd/internal/config"
)

// healthURL is the /healthz URL of a hookd listening on listen (such as
// ":8080" or "0.0.0.0:9000"), reached through the loopback address when
// listen names every address.
func healthURL(listen, scheme string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: "/healthz"}).String(), nil
}

func newHealthcheckCmd() *cobra.Command {
	var (
		target     string
		timeout    time.Duration
		useTLS     bool
		insecure   bool
		configPath string
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the hookd on this host answers GET /healthz with 200, 1 otherwise",
		Long: `Probe a running hookd: GET /healthz and exit 0 on a 200 answer, 1 on
anything else (no answer within --timeout, another status), with the reason on
standard error. It is the HEALTHCHECK of the container image, which has no
shell or curl.

Without --url it asks the address hookd listens on, through 127.0.0.1 when that
address names every interface: with --config, the file's listen (and https when
it sets server.tls), as hookd serve reads it, environment overrides included;
otherwise HOOKD_LISTEN (":8080" when unset).`,
		Example: `  hookd healthcheck
  hookd healthcheck --url http://127.0.0.1:9000/healthz
  hookd healthcheck --config /etc/hookd/hookd.yaml --insecure
  hookd healthcheck --tls --insecure`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				listen := os.Getenv("HOOKD_LISTEN")
				if listen == "" {
					listen = config.DefaultListen
				}
				if configPath != "" {
					cfg, err := config.Load(configPath)
					if err != nil {
						return failf(cmd, "%v", err)
					}
					listen = cfg.Listen
					useTLS = useTLS || cfg.Server.TLS != nil
				}
				scheme := "http"
				if useTLS {
					scheme = "https"
				}
				u, err := healthURL(listen, scheme)
				if err != nil {
					return failf(cmd, "%v", err)
				}
				target = u
			}
			if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return failf(cmd, "invalid --url %q (want a URL such as http://127.0.0.1:8080/healthz)", target)
			}
			if timeout <= 0 {
				return failf(cmd, "invalid --timeout %s (want a positive duration)", timeout)
			}
			return probeHealth(cmd, target, timeout, insecure)
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", "", "URL to GET (default http://127.0.0.1:<port of HOOKD_LISTEN>/healthz)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	f.BoolVar(&useTLS, "tls", false, "without --url: use https (hookd serves TLS)")
	f.BoolVar(&insecure, "insecure", false, "do not verify the server's certificate (its name is not the loopback address)")
	f.StringVarP(&configPath, "config", "c", "", "without --url: the configuration file (YAML) hookd serve runs with; its listen and server.tls say where to ask")
	cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

// probeHealth GETs target and fails unless it answers 200.
func probeHealth(cmd *cobra.Command, target string, timeout time.Duration, insecure bool) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	tr := &http.Transport{
		Proxy:             nil, // the probe is local: never through a proxy
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}, //nolint:gosec // opt-in, for a loopback probe
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{
		Transport: tr,
		// A health endpoint answers itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return failf(cmd, "unhealthy: %v", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return failf(cmd, "unhealthy: %v", err)
	}
	defer resp.Body.Close()
	// The answer is small; a bounded read lets the server finish it.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return failf(cmd, "unhealthy: GET %s: %s", target, resp.Status)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "healthy: GET %s: %s\n", target, resp.Status)
	return nil
}
