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
	const floor = 128 << 20
	stop := heapFloor(floor)
	raised := gcPercent(t)
	if raised <= 100 {
		t.Fatalf("GOGC %d with the floor on, want above 100", raised)
	}
	// The goal is the floor, not more: Go's heap minimum scales with
	// GOGC, and a GOGC of 10,000 made it 400 MB before the first cycle.
	checkGoal(t, "with the floor on", floor)
	// A live heap of a quarter of the floor: GOGC follows it after the
	// next cycles and the goal stays the floor.
	live := make([]byte, floor/4)
	waitGoal(t, "with a quarter of the floor live", floor)
	runtime.KeepAlive(live)
	live = nil
	waitGoal(t, "after the live heap went", floor)
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

func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// goalNear reports whether the runtime's heap goal is within the floor and
// 15% above it (stacks and globals count at GOGC's rate too).
func goalNear(floor uint64) (uint64, bool) {
	g := heapGoal()
	return g, g >= floor*9/10 && g <= floor*115/100
}

func checkGoal(t *testing.T, when string, floor uint64) {
	t.Helper()
	if g, ok := goalNear(floor); !ok {
		t.Errorf("%s: heap goal %.1f MB with a floor of %.1f MB (GOGC %d)", when, float64(g)/(1<<20), float64(floor)/(1<<20), gcPercent(t))
	}
}

// waitGoal collects until the floor's hook has adjusted GOGC (it runs after
// a cycle, on the runtime's cleanup goroutine), then checks the goal.
func waitGoal(t *testing.T, when string, floor uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if _, ok := goalNear(floor); ok {
			break
		}
	}
	checkGoal(t, when, floor)
}
