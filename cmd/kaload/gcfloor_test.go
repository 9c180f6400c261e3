package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func gcPercent(t *testing.T) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestHeapFloor: while the floor runs, GOGC is raised so that the heap goal
// reaches the floor (the live heap of a test is far below 1 GB), it follows
// every GC cycle, and stop restores the previous GOGC. GOGC or GOMEMLIMIT
// in the environment turn it off.
func TestHeapFloor(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := gcPercent(t)
	const floor = 256 << 20
	stop := heapFloor(floor)
	raised := gcPercent(t)
	if raised <= 100 {
		t.Fatalf("GOGC %d with the floor on, want above 100", raised)
	}
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	if g := goal[0].Value.Uint64(); g < floor*9/10 {
		t.Errorf("heap goal %d with a floor of %d", g, floor)
	}
	// Every cycle re-adjusts: set GOGC aside, collect, and the hook puts
	// it back (cleanups run after the cycle, on the runtime's goroutine).
	debug.SetGCPercent(100)
	for deadline := time.Now().Add(5 * time.Second); gcPercent(t) <= 100 && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := gcPercent(t); p <= 100 {
		t.Errorf("GOGC %d after GC cycles, want the floor back", p)
	}
	stop()
	stop() // idempotent
	runtime.GC()
	if after := gcPercent(t); after != before {
		t.Errorf("GOGC %d after stop, want %d as before", after, before)
	}

	t.Setenv("GOGC", "150")
	stop = heapFloor(floor)
	defer stop()
	if p := gcPercent(t); p != before {
		t.Errorf("GOGC set in the environment: GOGC became %d, want it untouched (%d)", p, before)
	}
}
