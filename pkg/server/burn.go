package server

import (
	"context"
	"sync/atomic"
	"time"
)

func burnWall(ctx context.Context, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		spin()
	}
}

// spin does roughly 10µs of arithmetic the compiler cannot remove.
func spin() {
	x := sink.Load() | 1
	for range 4000 {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink.Store(x)
}

var sink atomic.Uint64
