package cli

import "github.com/spf13/cobra"

func newBenchCmd() *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Measure ingest throughput against a bare net/http server", Hidden: true}
}
