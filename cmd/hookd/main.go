// Command hookd is a self-hosted webhook gateway: it receives webhooks the
// way providers ask consumers to (verify, persist durably, answer fast,
// dedupe) and serves them from a durable, replayable log.
package main

import (
	"os"

	"hookd/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
