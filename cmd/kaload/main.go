// Command kaload proves that a Kubernetes service spreads keep-alive traffic
// over the pods its autoscaler adds. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newStreams())
	stop()
	os.Exit(code)
}
