package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hookd/internal/loadgen"
)

func newDelayProxyCmd() *cobra.Command {
	var (
		listen, to string
		delay      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "delay-proxy",
		Short: "Relay TCP connections with a delay each way (a stand-in for tc netem)",
		Long: `Relay every TCP connection accepted on --listen to --to, holding what it
relays for --delay in each direction: a round trip through it takes twice
--delay more. It stands in for network latency (tc netem) where the kernel
has none, for measuring hookd with its database further away; with
--delay 0 it is a plain relay.

It prints its listen address on stdout, and on SIGINT or SIGTERM the
connections and bytes it relayed and the CPU it used, then exits.`,
		Example: `  hookd bench delay-proxy --listen 10.77.0.1:5432 --to 127.0.0.1:5432 --delay 1ms`,
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--to: give the upstream host:port")
			}
			if delay < 0 || delay > time.Minute {
				return fmt.Errorf("--delay: %s is not between 0 and 1m", delay)
			}
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), ln.Addr().String())
			p := &loadgen.DelayProxy{Upstream: to, Delay: delay}
			start := time.Now()
			err = p.Serve(ctx, ln)
			s := p.Stats()
			cpu := "unknown"
			if used, ok := processCPU(); ok {
				cpu = fmt.Sprintf("%.2fs (%.3f cores over %s)", used.Seconds(), used.Seconds()/time.Since(start).Seconds(), time.Since(start).Round(time.Second))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "delay-proxy: relayed %d connections, %.1f MB, delay %s each way; CPU %s\n",
				s.Connections, float64(s.Bytes)/1e6, delay, cpu)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:0", "listen address")
	fl.StringVar(&to, "to", "", "upstream host:port")
	fl.DurationVar(&delay, "delay", time.Millisecond, "one-way delay added in each direction")
	return cmd
}
