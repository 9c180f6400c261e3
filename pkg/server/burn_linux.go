package server

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// burnCPU spins until this goroutine's thread has used d of CPU time, so
// that on a busy node a request still costs d of CPU (what an HPA sees),
// not d of wall time. It stops early when ctx ends.
func burnCPU(ctx context.Context, d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, ok := threadCPU()
	if !ok {
		burnWall(ctx, d)
		return
	}
	for {
		spin()
		now, _ := threadCPU()
		if now-start >= d || ctx.Err() != nil {
			return
		}
	}
}

func threadCPU() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
