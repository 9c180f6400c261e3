package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The verdict rules: one place for the thresholds that report, hammer and
// lab judge by. RulesHelp says them in words for --help.
const (
	// FairFraction of its fair share counts as "got its fair share": a
	// backend within 20% of it.
	FairFraction = 0.8
	// StuckFraction: under this fraction of its fair share a backend is stuck.
	StuckFraction = 0.2
	// DominantShare: one backend with at least this share of the requests,
	// while others are known, is "concentrated".
	DominantShare = 0.9
	// MinCoverage: an interval the window covers for less than this fraction
	// (the last one of a run that ended just after an interval began) is
	// partial: it is neither drawn nor judged on its own.
	MinCoverage = 0.5
)

// Outcome classifies a verdict.
type Outcome string

const (
	OutcomeRebalanced   Outcome = "rebalanced"   // every new backend got and kept its fair share
	OutcomePartial      Outcome = "partial"      // a new backend got some traffic, less than its fair share or not for long
	OutcomeStuck        Outcome = "stuck"        // a new or known backend got (nearly) nothing
	OutcomeEven         Outcome = "even"         // no scale-up; every backend near its fair share
	OutcomeUneven       Outcome = "uneven"       // no scale-up; some backend well under its fair share
	OutcomeConcentrated Outcome = "concentrated" // one backend took DominantShare or more
	OutcomeNoData       Outcome = "no data"      // nothing to judge: no requests, no answers, or one backend and none known
)

// RulesHelp states the verdict rules for a command's --help.
func RulesHelp() string {
	return fmt.Sprintf(`Verdict rules (the same in report, hammer and lab):
  fair share    a backend's fair share of a stretch of time is what it gets
                if every interval's requests go evenly to the backends active
                in that interval: from first to last request; an idle pod
                named by --backends from the start, one seen Ready from then
  rebalanced    every backend that appeared mid-run got at least %.0f%% of its
                fair share over the time after it appeared, over the last half
                of that time (it stayed there), and from some interval on
                (the time it took is the rebalance time)
  partial       a new backend got less than that, but at least %.0f%%
  stuck         a new backend got under %.0f%%, or a known backend got nothing
  even/uneven   without a scale-up: every backend has at least %.0f%% of an
                even share, or not; concentrated: one has %.0f%% or more
  An interval the run covers for less than %.0f%% is not drawn or judged alone.`,
		100*FairFraction, 100*StuckFraction, 100*StuckFraction, 100*FairFraction, 100*DominantShare, 100*MinCoverage)
}

// JudgeShare applies the rules to a backend (or a group of backends) that
// appeared: its share and fair share over the judged period, and whether it
// held its fair share until the end.
func JudgeShare(share, fair float64, held bool) Outcome {
	if fair <= 0 || math.IsNaN(share) {
		return OutcomeNoData
	}
	switch f := share / fair; {
	case f >= FairFraction && held:
		return OutcomeRebalanced
	case f < StuckFraction:
		return OutcomeStuck
	default:
		return OutcomePartial
	}
}

// Partial reports whether interval k covers less than MinCoverage of an
// interval: the last one of a window that ended just after it began.
func (t Timeline) Partial(k int) bool {
	iv := t.Intervals[k]
	return t.IntervalSeconds > 0 && iv.EndSeconds-iv.StartSeconds < MinCoverage*t.IntervalSeconds
}

// whole is the number of leading intervals that are not partial.
func (t Timeline) whole() int {
	n := len(t.Intervals)
	if n > 0 && t.Partial(n-1) {
		return n - 1
	}
	return n
}

// rebalance judges every backend first seen after the first interval with
// traffic. A backend counts as active in every interval between its first
// and last request (a known backend that answered nothing: in every one), so
// an interval where it got nothing still lowers its share.
func rebalance(bs []*backendAgg, t Timeline) []Rebalance {
	out := []Rebalance{}
	n := len(t.Intervals)
	if len(bs) == 0 || n == 0 {
		return out
	}
	firstIv, lastIv := make([]int, len(bs)), make([]int, len(bs))
	// presence is the part of its first interval a backend was there for
	// (from its first request on): its fair share of that interval is prorated.
	presence := make([]float64, len(bs))
	start := n
	for i, b := range bs {
		presence[i] = 1
		if b.requests == 0 {
			// Known, idle: expected from the start, or from when an event
			// said it became Ready.
			firstIv[i], lastIv[i] = 0, n-1
			if b.readyAt > 0 && t.IntervalSeconds > 0 {
				firstIv[i] = min(int((seconds(b.readyAt)-t.StartSeconds)/t.IntervalSeconds), n-1)
				firstIv[i] = max(firstIv[i], 0)
			}
			continue
		}
		firstIv[i] = len(b.tl) - len(trimLeft(b.tl))
		lastIv[i] = len(b.tl) - 1
		start = min(start, firstIv[i])
		if fi := firstIv[i]; fi < n {
			iv := t.Intervals[fi]
			if w := iv.EndSeconds - iv.StartSeconds; w > 0 {
				presence[i] = min(max((iv.EndSeconds-seconds(b.first))/w, 0), 1)
			}
		}
	}
	totals := make([]float64, n)
	active := make([]float64, n) // backends active in each interval, weighted by presence
	for i, b := range bs {
		for k, c := range b.tl {
			totals[k] += float64(c)
		}
		for k := firstIv[i]; k <= lastIv[i] && k < n; k++ {
			if k == firstIv[i] {
				active[k] += presence[i]
			} else {
				active[k]++
			}
		}
	}
	whole := t.whole()
	for i, b := range bs {
		fi := firstIv[i]
		if b.requests == 0 || fi <= start {
			continue
		}
		// fairIn is the requests backend i would get in interval k if they
		// were spread evenly over the backends active in it.
		fairIn := func(k int) float64 {
			w := 1.0
			if k == fi {
				w = presence[i]
			}
			if active[k] <= 0 {
				return 0
			}
			return totals[k] * w / active[k]
		}
		sums := func(from, to int) (mine, fair, total float64) {
			for k := from; k < to; k++ {
				mine += float64(at(b.tl, k))
				fair += fairIn(k)
				total += totals[k]
			}
			return mine, fair, total
		}
		r := Rebalance{Backend: b.name, AppearedSeconds: round(seconds(b.first), 6)}
		mine, fair, total := sums(fi, n)
		r.ShareAfter = round(ratio(mine, total), 6)
		r.FairShare = round(ratio(fair, total), 6)
		half := fi + (n-fi)/2
		mineH, fairH, totalH := sums(half, n)
		r.ShareLastHalf = round(ratio(mineH, totalH), 6)
		r.FairShareLastHalf = round(ratio(fairH, totalH), 6)
		held := totalH > 0 && mineH >= FairFraction*fairH

		// Reached: the first interval at its fair share from which the rest
		// of the window, taken together, stays there. A partial last
		// interval is not judged alone.
		var reachedAt *float64
		for k := fi; k < max(whole, fi+1) && held; k++ {
			if totals[k] == 0 || float64(at(b.tl, k)) < FairFraction*fairIn(k) {
				continue
			}
			if m, f, _ := sums(k, n); m >= FairFraction*f {
				d := round(t.Intervals[k].EndSeconds-seconds(b.first), 6)
				reachedAt = &d
				break
			}
		}
		r.Outcome = JudgeShare(r.ShareAfter, r.FairShare, reachedAt != nil)
		if r.Outcome == OutcomeRebalanced {
			r.FairShareAfterSeconds = reachedAt
		}
		out = append(out, r)
	}
	return out
}

func at(s []uint64, k int) uint64 {
	if k < len(s) {
		return s[k]
	}
	return 0
}

func trimLeft(s []uint64) []uint64 {
	for len(s) > 0 && s[0] == 0 {
		s = s[1:]
	}
	return s
}

// RebalanceWorst is the longest time a new backend took to reach its fair
// share: +Inf if one never did (or did not stay there), 0 if no backend
// appeared mid-run.
func (s *Summary) RebalanceWorst() time.Duration {
	var worst time.Duration
	for _, r := range s.Rebalance {
		if r.FairShareAfterSeconds == nil {
			return time.Duration(math.MaxInt64)
		}
		worst = max(worst, time.Duration(*r.FairShareAfterSeconds*float64(time.Second)))
	}
	return worst
}

// outcomeRank orders outcomes from worst to best for "the worst of".
var outcomeRank = map[Outcome]int{OutcomeStuck: 0, OutcomePartial: 1, OutcomeConcentrated: 2, OutcomeUneven: 3, OutcomeRebalanced: 4, OutcomeEven: 5}

func worse(a, b Outcome) Outcome {
	if a == "" || outcomeRank[b] < outcomeRank[a] {
		return b
	}
	return a
}

// verdict judges s by the rules and says it in plain words.
func verdict(s *Summary) (Outcome, string) {
	switch {
	case s.Requests == 0:
		return OutcomeNoData, "no data: no requests in the window " + windowRange(s.Window)
	case s.Requests == s.Unattributed:
		return OutcomeNoData, fmt.Sprintf("no data: no backend answered; all %d requests failed", s.Requests)
	}
	var parts []string
	var o Outcome
	if s.Fairness == nil {
		parts = append(parts, fmt.Sprintf("1 backend (%s) received all requests; fairness not judged: %s", s.Backends[0].Name, s.FairnessNoData))
	} else {
		parts = append(parts, fmt.Sprintf("%d backends; shares %.1f%%–%.1f%% (Jain %.2f)",
			len(s.Backends), 100*s.Fairness.MinShare, 100*s.Fairness.MaxShare, s.Fairness.Jain))
	}

	// Known backends that got nothing: name the cause the data points to.
	var idle []string
	for _, b := range s.Backends {
		if b.Requests == 0 {
			idle = append(idle, b.Name)
		}
	}
	if len(idle) > 0 {
		o = OutcomeStuck
		if n := s.ServerCloses(); n > 0 {
			// The servers did recycle: new connections were made, and none
			// reached these backends.
			for _, name := range idle {
				parts = append(parts, fmt.Sprintf("%s never received a connection although the servers closed %d: is it behind the balancer?", name, n))
			}
		} else {
			parts = append(parts, fmt.Sprintf("%s received no requests and no server closed a connection: keep-alive connections are not being rebalanced (recycle them, e.g. kaload serve --max-requests)", strings.Join(idle, ", ")))
		}
	}

	for _, r := range s.Rebalance {
		o = worse(o, r.Outcome)
		switch r.Outcome {
		case OutcomeRebalanced:
			parts = append(parts, fmt.Sprintf("%s appeared at %.1fs and reached its fair share after %.1fs (%.1f%%, fair %.1f%%)",
				r.Backend, r.AppearedSeconds, *r.FairShareAfterSeconds, 100*r.ShareAfter, 100*r.FairShare))
		default:
			l := fmt.Sprintf("%s appeared at %.1fs but received only %.1f%% of requests after that (fair share %.1f%%)",
				r.Backend, r.AppearedSeconds, 100*r.ShareAfter, 100*r.FairShare)
			if r.ShareAfter >= FairFraction*r.FairShare {
				l = fmt.Sprintf("%s appeared at %.1fs and got %.1f%% of requests after that (fair share %.1f%%) but did not keep it: %.1f%% in the last half (fair %.1f%%)",
					r.Backend, r.AppearedSeconds, 100*r.ShareAfter, 100*r.FairShare, 100*r.ShareLastHalf, 100*r.FairShareLastHalf)
			} else if r.ShareLastHalf < r.ShareAfter*0.9 {
				l += fmt.Sprintf(", falling to %.1f%% in the last half", 100*r.ShareLastHalf)
			}
			l += ": " + string(r.Outcome)
			if s.ServerCloses() == 0 {
				l += ": connections are not being rebalanced (no server closed a connection)"
			}
			parts = append(parts, l)
		}
	}

	// Without a scale-up, judge the spread itself.
	if len(s.Rebalance) == 0 && len(idle) == 0 {
		switch f := s.Fairness; {
		case f == nil:
			o = OutcomeNoData
		case f.MaxShare >= DominantShare && len(s.Backends) > 1:
			o = OutcomeConcentrated
			parts = append(parts, fmt.Sprintf("concentrated: %s got %.1f%% of requests", busiest(s), 100*f.MaxShare))
		case f.MinShare >= FairFraction/float64(len(s.Backends)):
			o = OutcomeEven
			parts = append(parts, fmt.Sprintf("even: every backend within %.0f%% of an even share", 100*(1-FairFraction)))
		default:
			o = OutcomeUneven
			parts = append(parts, fmt.Sprintf("uneven: the smallest share %.1f%% is under %.0f%% of an even %.1f%%",
				100*f.MinShare, 100*FairFraction, 100/float64(len(s.Backends))))
		}
	}
	if s.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d errors (%.2f%%)", s.Errors, 100*s.ErrorRate))
	}
	if s.TimeoutRedials > 0 {
		parts = append(parts, timeoutRedialsLine(s))
	}
	if s.FoldedBackends > 0 {
		parts = append(parts, FoldedLine(s))
	}
	if s.Unsent != nil && *s.Unsent > 0 {
		// The load judged was less than asked for: say so with the verdict.
		parts = append(parts, fmt.Sprintf("%s requests were due but never sent (target %s/s not reached)",
			thousands(*s.Unsent), strconv.FormatFloat(s.TargetRPS, 'f', -1, 64)))
	}
	return o, strings.Join(parts, "; ")
}

func busiest(s *Summary) string {
	name, most := "", uint64(0)
	for _, b := range s.Backends {
		if b.Requests > most {
			name, most = b.Name, b.Requests
		}
	}
	return name
}

// FoldedLine says how many backend names were folded into OtherBackend, for
// the verdict and for the commands' warnings.
func FoldedLine(s *Summary) string {
	more := ""
	if s.FoldedAtLeast {
		more = "at least "
	}
	return fmt.Sprintf("%s%d more backend names than the %d tracked one by one were folded into %s (a server that sends a unique backend header value?)",
		more, s.FoldedBackends, s.TrackedBackends, OtherBackend)
}

// ServerCloses counts the connections the servers ended: Connection: close
// (HTTP/1.1) and GOAWAY (HTTP/2, gRPC).
func (s *Summary) ServerCloses() uint64 {
	return s.CloseReasons["server-close"] + s.CloseReasons["goaway"]
}

// timeoutRedialsLine warns that the client, not the servers, moved
// connections: a hammer that falls behind is no longer a pure keep-alive
// client, and the spread it saw does not prove server-side recycling.
func timeoutRedialsLine(s *Summary) string {
	what := thousands(s.TimeoutRedials) + " connections were"
	if s.TimeoutRedials == 1 {
		what = "1 connection was"
	}
	return what + " re-dialled after a request timed out (the client fell behind): such redials reach new backends as recycling would, so this spread does not show that the servers recycle"
}
