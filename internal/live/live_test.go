package live

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSnapshot(t *testing.T) {
	c := NewCounter(4)
	add := func(name string, n int, failed bool) {
		for range n {
			c.Add(name, failed)
		}
	}
	// Interval 1: pod-1 61, pod-2 20, pod-3 19, 2 failed dials.
	add("pod-1", 61, false)
	add("pod-2", 20, false)
	add("pod-3", 19, false)
	add("", 2, true)
	s := c.Snapshot()
	if s.Requests != 102 || s.Errors != 2 || s.Answered != 100 || s.Backends != 3 {
		t.Errorf("totals %+v", s)
	}
	if got, want := s.SharesText(), "pod-1 61% pod-2 20% pod-3 19% new: pod-1, pod-2, pod-3"; got != want {
		t.Errorf("interval 1: %q, want %q", got, want)
	}
	// Interval 2: two more backends, one past the cap of 4: 10 each of 5
	// names -> pod-4 and (other) new; shares 20% each, 2 summed as others.
	for _, n := range []string{"pod-1", "pod-2", "pod-3", "pod-4", "pod-5"} {
		add(n, 10, false)
	}
	s = c.Snapshot()
	if got, want := s.SharesText(), "pod-1 20% pod-2 20% pod-3 20% +2 others 40% new: pod-4, (other)"; got != want {
		t.Errorf("interval 2: %q, want %q", got, want)
	}
	// Interval 3: nothing answered: no share is made up.
	add("", 5, true)
	s = c.Snapshot()
	if got, want := s.SharesText(), "no answers in the last interval"; got != want {
		t.Errorf("interval 3: %q, want %q", got, want)
	}
	if got, want := Line(3*time.Second, "10s", time.Second, s, 152), "kaload: 3s/10s 5 req/s 157 requests 7 errors 5 backends | no answers in the last interval"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}

// TestLines drives the --live loop with a fake clock: one line per tick,
// each with that interval's rate and shares.
func TestLines(t *testing.T) {
	c := NewCounter(0)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ticks, done := make(chan time.Time), make(chan struct{})
	var lines []string
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		Lines(done, ticks, start, 2*time.Second, "6s", c, func(l string) { lines = append(lines, l) })
	}()
	for range 30 {
		c.Add("web-1", false)
	}
	for range 10 {
		c.Add("web-2", false)
	}
	ticks <- start.Add(2 * time.Second)
	for range 10 {
		c.Add("web-2", false)
	}
	c.Add("", true)
	ticks <- start.Add(4 * time.Second)
	close(done)
	<-finished
	want := []string{
		// 40 requests in 2s = 20/s; web-1 30 of 40 = 75%.
		"kaload: 2s/6s 20 req/s 40 requests 0 errors 2 backends | web-1 75% web-2 25% new: web-1, web-2",
		// 11 requests in 2s = 5.5/s, printed %.0f: 6.
		"kaload: 4s/6s 6 req/s 51 requests 1 errors 2 backends | web-2 100%",
	}
	if len(lines) != len(want) {
		t.Fatalf("lines %q", lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %q, want %q", i, lines[i], want[i])
		}
	}
}

func TestShares(t *testing.T) {
	c := NewCounter(0)
	start := time.Unix(0, 0)
	s := NewShares(c, start, time.Second)
	c.Add("a", false)
	if got := s.At(start.Add(500 * time.Millisecond)); got != "shares after 1s" {
		t.Errorf("before the first interval: %q", got)
	}
	c.Add("b", false)
	if got := s.At(start.Add(time.Second)); got != "a 50% b 50% new: a, b" {
		t.Errorf("after it: %q", got)
	}
	c.Add("b", false)
	if got := s.At(start.Add(1500 * time.Millisecond)); got != "a 50% b 50% new: a, b" {
		t.Errorf("mid-interval the last whole one stays: %q", got)
	}
}
