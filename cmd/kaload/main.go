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
	ctx, cancel := context.WithCancel(context.Background())
	s := newStreams()
	abort := make(chan struct{})
	s.Abort = abort
	// The first SIGINT or SIGTERM cancels ctx (work in flight finishes); a
	// second closes abort (the hammer ends its requests at once); a third
	// gets the default action.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		close(abort)
		signal.Stop(sigs)
	}()
	// A write to a closed pipe (-o - | head) returns EPIPE, which the
	// commands report, instead of killing the process silently (exit 141).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	code := run(ctx, os.Args[1:], s)
	cancel()
	os.Exit(code)
}
