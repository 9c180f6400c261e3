package server

import (
	"context"
	"syscall"
	"testing"
	"time"
)

func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBurnCPU: --cpu D costs at least D of CPU time, however busy the
// machine is (a lower bound, so it cannot flake on a slow machine).
func TestBurnCPU(t *testing.T) {
	before := processCPU(t)
	burnCPU(context.Background(), 30*time.Millisecond)
	if used := processCPU(t) - before; used < 30*time.Millisecond {
		t.Errorf("burnCPU(30ms) used %v of CPU", used)
	}
	// A cancelled request stops burning.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	burnCPU(ctx, time.Hour)
	if time.Since(start) > 10*time.Second {
		t.Errorf("burnCPU ignored a cancelled context")
	}
}
