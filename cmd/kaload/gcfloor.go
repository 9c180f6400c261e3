package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// serveHeapFloor is the smallest heap goal kaload serve lets the garbage
// collector aim for. With the default GOGC=100 a server whose live heap is
// a few MB (kaload's libraries keep about 3 MB) collects after every 3-4 MB
// allocated, and net/http allocates about 2 KB per request: a cycle every
// ~1,500 requests, about 1 µs of CPU per request on the reference machine
// (bench/README.md, serve). A floor of 32 MB makes cycles about ten times
// rarer at the cost of at most 32 MB of heap; above 16 MB live the floor
// no longer applies and GOGC=100 holds.
const serveHeapFloor = 32 << 20

// goHeapMinimum is the runtime's smallest heap goal at GOGC=100
// (defaultHeapMinimum in runtime/mgcpacer.go); it scales with GOGC.
// TestHeapFloor reads the goal the runtime computes, so a change shows.
const goHeapMinimum = 4 << 20

// heapFloor keeps the GC's heap goal at no less than floor bytes until
// stop is called: after every cycle it sets GOGC so that the goal is
// max(2 x live heap, floor). It does nothing when GOGC or GOMEMLIMIT is
// set in the environment: the operator has chosen. GOGC is process-wide,
// so servers running at once (tests) share one floor, the first one's,
// and the last stop restores GOGC.
func heapFloor(floor uint64) (stop func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	floors.Lock()
	defer floors.Unlock()
	if floors.users == 0 {
		f := &gcFloor{floor: floor, prev: debug.SetGCPercent(100)}
		f.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}
		f.adjust()
		f.arm()
		floors.cur = f
	}
	floors.users++
	return sync.OnceFunc(func() {
		floors.Lock()
		defer floors.Unlock()
		if floors.users--; floors.users == 0 {
			floors.cur.stop()
			floors.cur = nil
		}
	})
}

var floors struct {
	sync.Mutex
	users int
	cur   *gcFloor
}

type gcFloor struct {
	floor uint64
	prev  int

	mu      sync.Mutex // serialises adjust and stop
	stopped bool
	sample  []metrics.Sample // the live heap and the current GOGC
}

// arm runs adjust after the next GC cycle: a cleanup runs once its object
// was found unreachable, so a fresh one per cycle is a per-cycle hook that
// needs no goroutine of ours.
func (f *gcFloor) arm() {
	sentinel := new([16]byte) // not tiny-allocated: its own object
	runtime.AddCleanup(sentinel, func(f *gcFloor) {
		if f.adjust() {
			f.arm()
		}
	}, f)
}

// adjust sets GOGC from the live heap; false once stopped.
func (f *gcFloor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.sample)
	live := uint64(1)
	if s := f.sample[0]; s.Value.Kind() == metrics.KindUint64 && s.Value.Uint64() > 0 {
		live = s.Value.Uint64()
	}
	p := 100
	if live < f.floor/2 {
		// The goal is max(live + live*p/100, heapMinimum*p/100): Go's
		// heap minimum scales with GOGC. Past floor*100/heapMinimum the
		// minimum alone overshoots the floor (before the first cycle,
		// when live reads 0, p was 10,000 and the heap grew to 400 MB;
		// the scavenger then returned it page by page while the
		// allocator faulted it back in, 0.2 faults per request).
		p = int((f.floor - live) * 100 / live)
		p = min(p, int(f.floor*100/goHeapMinimum))
	}
	if s := f.sample[1]; s.Value.Kind() != metrics.KindUint64 || s.Value.Uint64() != uint64(p) {
		debug.SetGCPercent(p)
	}
	return true
}

func (f *gcFloor) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(f.prev)
	}
}
