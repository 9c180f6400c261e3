package report

import (
	"fmt"
	"math"
	"time"
)

// DefaultTargetRebalance is the rebalance time a recommendation aims at.
const DefaultTargetRebalance = 30 * time.Second

// ConnAgeJitter is the spread kaload serve --max-conn-age puts on each
// connection's age limit (±10%, as grpc-go's MaxConnectionAge): the
// recommended age leaves room for the longest.
const ConnAgeJitter = 0.1

// Recommendation is the recycling setting that would bring a new pod to
// its fair share within the target, from the run's own figures: a
// connection carries RPS/Connections requests per second, so after
// MaxRequests of them (or MaxConnAge) every connection has been dialled
// again, and a new dial may land on the new pod.
type Recommendation struct {
	TargetRebalanceSeconds float64 `json:"target_rebalance_seconds"`
	Connections            int     `json:"connections"`
	RPS                    float64 `json:"rps"`
	PerConnectionRPS       float64 `json:"requests_per_connection_per_second"`
	PodsBefore             int     `json:"pods_before,omitempty"`
	PodsAfter              int     `json:"pods_after,omitempty"`
	// MaxRequests for kaload serve --max-requests (nginx keepalive_requests,
	// Envoy max_requests_per_connection) and the new connections per second it costs.
	MaxRequests              int     `json:"max_requests"`
	MaxRequestsNewConnPerSec float64 `json:"max_requests_new_connections_per_second"`
	// MaxConnAgeSeconds for kaload serve --max-conn-age (with ±10% jitter),
	// and its new connections per second.
	MaxConnAgeSeconds       float64 `json:"max_conn_age_seconds"`
	MaxConnAgeJitter        float64 `json:"max_conn_age_jitter"`
	MaxConnAgeNewConnPerSec float64 `json:"max_conn_age_new_connections_per_second"`
	// ReconnectCostMs is the extra latency of a connection's first request
	// over the others (dial and TLS handshake); nil when the run did not
	// measure both. HandshakeSecondsPerSecond is the client time the
	// recommended churn spends on it.
	ReconnectCostMs           *float64 `json:"reconnect_cost_ms"`
	HandshakeSecondsPerSecond *float64 `json:"handshake_seconds_per_second"`
	Arithmetic                string   `json:"arithmetic"`
}

// recommend computes the recommendation, or says why it cannot.
func (a *Aggregator) recommend(s *Summary) (*Recommendation, string) {
	target := a.opts.TargetRebalance
	if target <= 0 {
		target = DefaultTargetRebalance
	}
	switch {
	case s.Requests == 0 || s.RPS <= 0:
		return nil, "no requests in the window"
	case s.PerfectConnections <= 0:
		return nil, "the results file does not say how many connections the client kept (-c)"
	}
	r := &Recommendation{TargetRebalanceSeconds: target.Seconds(), Connections: s.PerfectConnections, RPS: s.RPS}
	r.PerConnectionRPS = round(s.RPS/float64(r.Connections), 3)
	perConn := s.RPS / float64(r.Connections)
	// Every connection is dialled again within N/perConn seconds.
	r.MaxRequests = max(1, int(math.Floor(target.Seconds()*perConn)))
	r.MaxRequestsNewConnPerSec = round(s.RPS/float64(r.MaxRequests), 3)
	age := target.Seconds() / (1 + ConnAgeJitter)
	r.MaxConnAgeSeconds = round(age, 3)
	r.MaxConnAgeJitter = ConnAgeJitter
	r.MaxConnAgeNewConnPerSec = round(float64(r.Connections)/age, 3)
	if a.firstN > 0 && a.restN > 0 {
		cost := max(0, float64(a.firstLat)/float64(a.firstN)-float64(a.restLat)/float64(a.restN)) / float64(time.Millisecond)
		c := round(cost, 3)
		r.ReconnectCostMs = &c
		h := round(r.MaxRequestsNewConnPerSec*cost/1e3, 6)
		r.HandshakeSecondsPerSecond = &h
	}
	for _, b := range s.Backends {
		if b.Requests > 0 || len(s.Stages) > 0 {
			r.PodsAfter++
		}
	}
	r.PodsBefore = r.PodsAfter - len(s.Rebalance)
	if len(s.Stages) > 0 {
		r.PodsBefore = r.PodsAfter - len(s.Stages)
	}
	r.Arithmetic = fmt.Sprintf("each of %d connections carries %.4g req/s / %d = %.4g req/s, so --max-requests %d (%gs x %.4g req/s) re-dials every connection within %gs, costing %.4g req/s / %d = %.4g new connections/s; or --max-conn-age %gs (%gs / 1.1 for the +10%% jitter) at %d / %.4gs = %.4g new connections/s",
		r.Connections, s.RPS, r.Connections, perConn, r.MaxRequests, target.Seconds(), perConn, target.Seconds(),
		s.RPS, r.MaxRequests, r.MaxRequestsNewConnPerSec, r.MaxConnAgeSeconds, target.Seconds(), r.Connections, r.MaxConnAgeSeconds, r.MaxConnAgeNewConnPerSec)
	if r.ReconnectCostMs != nil {
		r.Arithmetic += fmt.Sprintf("; a reconnect costs %.3gms (a connection's first request over the others), %.4g s of handshakes per second", *r.ReconnectCostMs, *r.HandshakeSecondsPerSecond)
	}
	return r, ""
}
