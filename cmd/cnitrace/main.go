// Command cnitrace tells where between a pod and its peer the latency or the
// loss is: it probes from inside the pod's network namespace, captures the
// same probes on every interface of the node path and prints a hop breakdown.
//
// See README.md and docs/ for usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
