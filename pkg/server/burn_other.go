//go:build !linux

package server

import (
	"context"
	"time"
)

// burnCPU spins for d of wall time; without a per-thread CPU clock this
// burns at most d of CPU on a busy machine.
func burnCPU(ctx context.Context, d time.Duration) { burnWall(ctx, d) }
