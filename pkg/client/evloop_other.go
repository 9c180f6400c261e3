//go:build !linux

package client

import "context"

// loopSet is the event-loop engine, which exists on Linux only: elsewhere
// every run takes the goroutine engine.
type loopSet struct{}

func (r *run) newLoops(context.Context, int) *loopSet { return nil }
func (s *loopSet) wake()                              {}
func (s *loopSet) run() []Stats                       { return nil }
