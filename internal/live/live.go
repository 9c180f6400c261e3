// Package live counts a running hammer's requests per backend for the
// progress line: each backend's share of the last interval and the
// backends that appeared in it.
package live

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Other names the row of backends past the counter's cap.
const Other = "(other)"

// Counter counts requests per backend between snapshots. Add is called by
// the engine's sink, Snapshot by the progress goroutine: a mutex (one
// uncontended lock per request) keeps them apart.
type Counter struct {
	mu       sync.Mutex
	max      int
	last     *backend // the previous request's backend: most repeat it
	byName   map[string]*backend
	order    []*backend
	fresh    []string // first seen since the last snapshot
	requests uint64
	errors   uint64
}

type backend struct {
	name string
	n    uint64 // since the last snapshot
}

// NewCounter counts up to maxBackends names one by one (the report's cap);
// the rest count as Other. maxBackends <= 0: no cap.
func NewCounter(maxBackends int) *Counter {
	return &Counter{max: maxBackends, byName: map[string]*backend{}}
}

// Add counts one request answered by name ("": no backend, a failed dial).
func (c *Counter) Add(name string, failed bool) {
	c.mu.Lock()
	c.requests++
	if failed {
		c.errors++
	}
	if name != "" {
		b := c.last
		if b == nil || b.name != name {
			b = c.lookup(name)
		}
		b.n++
		c.last = b
	}
	c.mu.Unlock()
}

func (c *Counter) lookup(name string) *backend {
	if b, ok := c.byName[name]; ok {
		return b
	}
	if c.max > 0 && len(c.byName) >= c.max {
		name = Other
		if b, ok := c.byName[name]; ok {
			return b
		}
	}
	b := &backend{name: strings.Clone(name)}
	c.byName[b.name] = b
	c.order = append(c.order, b)
	c.fresh = append(c.fresh, b.name)
	return b
}

// Share is one backend's part of an interval's answered requests.
type Share struct {
	Backend  string
	Requests uint64
	Share    float64
}

// Snapshot is what happened since the previous one.
type Snapshot struct {
	Requests, Errors uint64 // since the start
	Backends         int    // seen since the start
	Answered         uint64 // requests with a backend since the previous snapshot
	Shares           []Share
	New              []string // backends first seen since the previous snapshot
}

// Snapshot returns the counts since the previous call and starts anew.
func (c *Counter) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{Requests: c.requests, Errors: c.errors, Backends: len(c.order), New: c.fresh}
	c.fresh = nil
	for _, b := range c.order {
		s.Answered += b.n
	}
	for _, b := range c.order {
		if b.n > 0 {
			s.Shares = append(s.Shares, Share{Backend: b.name, Requests: b.n, Share: float64(b.n) / float64(s.Answered)})
			b.n = 0
		}
	}
	slices.SortStableFunc(s.Shares, func(x, y Share) int { return cmp.Compare(y.Requests, x.Requests) })
	return s
}

// Top is how many backends a line names; the rest are summed.
const Top = 3

// SharesText prints the top backends' shares of the last interval, the rest
// summed, and the backends new in it: "pod-1 61% pod-2 20% +2 others 19%
// new: pod-3". Without an answer in the interval it says so.
func (s Snapshot) SharesText() string {
	if s.Answered == 0 {
		return "no answers in the last interval"
	}
	var b strings.Builder
	var rest float64
	for i, sh := range s.Shares {
		if i >= Top {
			rest += sh.Share
			continue
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s %.0f%%", sh.Backend, 100*sh.Share)
	}
	if n := len(s.Shares) - Top; n > 0 {
		fmt.Fprintf(&b, " +%d others %.0f%%", n, 100*rest)
	}
	if len(s.New) > 0 {
		b.WriteString(" new: " + strings.Join(s.New[:min(len(s.New), Top)], ", "))
		if n := len(s.New) - Top; n > 0 {
			fmt.Fprintf(&b, " +%d", n)
		}
	}
	return b.String()
}

// Line is one --live line: elapsed against the limit, requests/s over the
// interval, totals and the shares.
func Line(elapsed time.Duration, limit string, interval time.Duration, s Snapshot, prevRequests uint64) string {
	rps := float64(s.Requests-prevRequests) / interval.Seconds()
	return fmt.Sprintf("kaload: %s/%s %.0f req/s %d requests %d errors %d backends | %s",
		elapsed.Round(time.Second), limit, rps, s.Requests, s.Errors, s.Backends, s.SharesText())
}

// Lines emits one Line per tick until done closes: ticks come every
// interval (a time.Ticker's channel; a test's own times). elapsed is
// measured from start on the ticks' clock.
func Lines(done <-chan struct{}, ticks <-chan time.Time, start time.Time, interval time.Duration, limit string, c *Counter, emit func(string)) {
	var prev uint64
	for {
		select {
		case <-done:
			return
		case now := <-ticks:
			s := c.Snapshot()
			emit(Line(now.Sub(start), limit, interval, s, prev))
			prev = s.Requests
		}
	}
}

// Shares keeps the shares text of the last whole interval for a display
// refreshed more often than that (the terminal bar).
type Shares struct {
	c        *Counter
	interval time.Duration
	last     time.Time
	text     string
}

// NewShares starts the first interval at start.
func NewShares(c *Counter, start time.Time, interval time.Duration) *Shares {
	return &Shares{c: c, interval: interval, last: start, text: "shares after " + interval.String()}
}

// At returns the shares text at now, taking a new snapshot once an
// interval has passed since the last.
func (s *Shares) At(now time.Time) string {
	if now.Sub(s.last) >= s.interval {
		s.text = s.c.Snapshot().SharesText()
		s.last = now
	}
	return s.text
}
