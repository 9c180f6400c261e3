package report

import (
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

// TestRecommend by hand: 4 connections, 1000 requests 10ms apart, the last
// ending at 10s: 100 req/s, 25 req/s per connection. A connection's first
// request takes 12ms, the others 10ms: a reconnect costs 2ms.
func TestRecommend(t *testing.T) {
	tests := []struct {
		target                       time.Duration
		maxReq                       int
		reqChurn, age, ageChurn, hsk float64
	}{
		// 30s x 25 = 750; 100/750 = 0.133; 30/1.1 = 27.273s; 4/27.273 = 0.147; 0.1333 x 2ms = 0.000267 s/s
		{0, 750, 0.133, 27.273, 0.147, 0.000267},
		// 10s x 25 = 250; 100/250 = 0.4; 10/1.1 = 9.091s; 4/9.091 = 0.44; 0.4 x 2ms = 0.0008 s/s
		{10 * time.Second, 250, 0.4, 9.091, 0.44, 0.0008},
		// 20ms x 25 = 0.5: at least 1 request per connection; 100/1 = 100
		{20 * time.Millisecond, 1, 100, 0.018, 220, 0.2},
	}
	for _, tt := range tests {
		a := NewAggregator(Options{TargetRebalance: tt.target})
		run, err := a.AddRun(results.Header{Start: t0, Connections: 4})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1000 {
			lat := 10 * time.Millisecond
			if i < 4 {
				lat = 12 * time.Millisecond
			}
			run.Add(&client.Result{Seq: uint64(i), Start: time.Duration(i) * 10 * time.Millisecond, Latency: lat, Status: 200,
				Backend: "web-1", Conn: uint64(i%4 + 1), ConnReq: uint32(i/4 + 1), ServerTotal: -1})
		}
		s := a.Summary()
		r := s.Recommendation
		if r == nil {
			t.Fatalf("no recommendation: %s", s.RecommendationNoData)
		}
		if r.RPS != 100 || r.PerConnectionRPS != 25 || r.MaxRequests != tt.maxReq || !near(r.MaxRequestsNewConnPerSec, tt.reqChurn) ||
			!near(r.MaxConnAgeSeconds, tt.age) || !near(r.MaxConnAgeNewConnPerSec, tt.ageChurn) ||
			r.ReconnectCostMs == nil || !near(*r.ReconnectCostMs, 2) || !near(*r.HandshakeSecondsPerSecond, tt.hsk) {
			t.Errorf("target %s: %+v (cost %v, handshakes %v)", tt.target, r, deref(r.ReconnectCostMs), deref(r.HandshakeSecondsPerSecond))
		}
		if !strings.Contains(r.Arithmetic, "each of 4 connections carries 100 req/s / 4 = 25 req/s, so --max-requests") {
			t.Errorf("arithmetic %q", r.Arithmetic)
		}
	}
	if s := NewAggregator(Options{}).Summary(); s.Recommendation != nil || s.RecommendationNoData != "no requests in the window" {
		t.Errorf("empty: %+v %q", s.Recommendation, s.RecommendationNoData)
	}
}
