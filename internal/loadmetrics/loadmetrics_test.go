package loadmetrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
)

// TestFoldsBackends: past the cap every name counts as report.OtherBackend,
// so the series stay bounded whatever names a server sends.
func TestFoldsBackends(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, "", "http://svc/", "test", 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		name := []string{"pod-a", "pod-b"}[i%2]
		if i >= 50 {
			name = "unique-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		m.Record(&client.Result{Backend: name, Latency: time.Millisecond, Status: 200, Conn: uint64(i + 1), ConnReq: 1, Close: client.CloseServer})
	}
	m.Record(&client.Result{Err: "dial tcp: connection refused", ServerTotal: -1})
	m.Record(&client.Result{Kind: client.KindSocket, Backend: "pod-a"}) // not a request
	for _, c := range []struct {
		backend string
		want    float64
	}{{"pod-a", 25}, {"pod-b", 25}, {report.OtherBackend, 50}, {"", 1}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.backend)); got != c.want {
			t.Errorf("requests{backend=%q} = %v, want %v", c.backend, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 4 {
		t.Errorf("%d request series, want 4 (2 tracked, %s, none)", n, report.OtherBackend)
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("", "connection refused")); got != 1 {
		t.Errorf("errors{kind=connection refused} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.closed.WithLabelValues("server-close")); got != 100 {
		t.Errorf("closed{server-close} = %v, want 100", got)
	}
}

// TestOpenModel: Due counts the requests due so far at the rate and freezes
// at the run's end; Unsent exists only once the run ended; the closed model
// has neither (nothing stands for "not measured").
func TestOpenModel(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, "", "http://svc/", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(reg, Due, Unsent); n != 0 {
		t.Fatalf("closed model: %d open-model series, want none", n)
	}
	if err := m.OpenModel(100, time.Now().Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	// 2 s at 100/s: seqs 0..199 are due (at least), a little more as time passes.
	if got, _ := gauge(reg, Due); got < 200 || got > 300 {
		t.Errorf("due after 2 s at 100/s = %v, want 200 or a little more", got)
	}
	if n, _ := testutil.GatherAndCount(reg, Unsent); n != 0 {
		t.Errorf("unsent before the run ended: %d series, want none", n)
	}
	// The engine's due count, not the rate times the time so far.
	if err := m.SetUnsent(30, 250); err != nil {
		t.Fatal(err)
	}
	if got, _ := gauge(reg, Due); got != 250 {
		t.Errorf("due at the end = %v, want the 250 given", got)
	}
	if got, _ := gauge(reg, Unsent); got != 30 {
		t.Errorf("unsent = %v, want 30", got)
	}
}

func gauge(reg *prometheus.Registry, name string) (float64, bool) {
	fams, err := reg.Gather()
	if err != nil {
		return 0, false
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}
