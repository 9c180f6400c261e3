package client

import (
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/server"
)

func TestMain(m *testing.M) {
	if os.Getenv(holdServerEnv) != "" {
		holdServer()
		return
	}
	// KALOAD_TEST_ENGINE=goroutines or =evloop runs the whole suite's plain
	// http:// runs on that engine (bothEngines tests run both anyway).
	switch os.Getenv("KALOAD_TEST_ENGINE") {
	case "goroutines":
		eventLoops = false
	case "evloop":
		eventLoops = true
	}
	goleak.VerifyTestMain(m)
}

// bothEngines runs f on the event-loop engine (the default for plain
// http:// on Linux) and on the goroutine engine: the same rules hold.
func bothEngines(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, loops := range []bool{true, false} {
		name := "evloop"
		if !loops {
			name = "goroutines"
		}
		t.Run(name, func(t *testing.T) {
			defer func(old bool) { eventLoops = old }(eventLoops)
			eventLoops = loops
			f(t)
		})
	}
}

// collector is a Sink that keeps copies of every Result.
type collector struct {
	mu  sync.Mutex
	res []Result
}

func (c *collector) Record(r *Result) {
	c.mu.Lock()
	c.res = append(c.res, *r)
	c.mu.Unlock()
}

// startServer runs the real kaload server on loopback until the test ends.
func startServer(t *testing.T, cfg server.Config) (url string, srv *server.Server) {
	t.Helper()
	s := servertest.Start(t, cfg)
	return s.URL, s.Server
}

// checkResults verifies what every run must satisfy: one result per sequence
// number 0..n-1, and Stats agreeing with the results.
func checkResults(t *testing.T, st Stats, res []Result, n int64) {
	t.Helper()
	if int64(len(res)) != n || st.Requests != n {
		t.Fatalf("got %d results, stats.Requests %d, want %d", len(res), st.Requests, n)
	}
	seen := make([]bool, n)
	var errs int64
	for _, r := range res {
		if r.Seq >= uint64(n) || seen[r.Seq] {
			t.Fatalf("sequence %d out of range or repeated", r.Seq)
		}
		seen[r.Seq] = true
		if r.Failed() {
			errs++
		}
	}
	if errs != st.Errors {
		t.Fatalf("results hold %d errors, stats %d", errs, st.Errors)
	}
}
