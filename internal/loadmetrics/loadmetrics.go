// Package loadmetrics exposes a running hammer's results as Prometheus
// metrics: requests, errors and latency per backend, connections opened
// and closed. Backend names are capped like the report's (the rest fold
// into report.OtherBackend), so a server cannot blow up the series count.
package loadmetrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
)

// Metric names; deploy/grafana's dashboard queries them.
const (
	Requests         = "kaload_hammer_requests_total"
	Errors           = "kaload_hammer_errors_total"
	Latency          = "kaload_hammer_request_duration_seconds"
	ConnectionsOpen  = "kaload_hammer_connections_opened_total"
	ConnectionsClose = "kaload_hammer_connections_closed_total"
	Info             = "kaload_hammer_info"
	Due              = "kaload_hammer_due_requests"
	Unsent           = "kaload_hammer_unsent_requests"
)

// Names lists every metric this package exports.
var Names = []string{Requests, Errors, Latency, ConnectionsOpen, ConnectionsClose, Info, Due, Unsent}

// Metrics is the collectors of one run. Record is called serially (the
// engine's sink); scrapes read the collectors concurrently.
type Metrics struct {
	reg      prometheus.Registerer
	cl       prometheus.Labels
	max      int
	byName   map[string]*backend
	last     *backend
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	opened   *prometheus.CounterVec
	closed   *prometheus.CounterVec

	// Open model only (OpenModel): the rate, the run's start and, once
	// the run ended, the final due count (-1 before).
	rate     float64
	start    time.Time
	dueAtEnd atomic.Int64
}

// backend caches one backend's children: no label hashing per request.
type backend struct {
	name     string
	requests prometheus.Counter
	latency  prometheus.Observer
	opened   prometheus.Counter
}

// New registers the run's metrics on reg. label is the run's --label (a
// constant label on every series, "" when unset); maxBackends caps the
// backend names (<= 0: no cap).
func New(reg prometheus.Registerer, label, url, version string, maxBackends int) (*Metrics, error) {
	cl := prometheus.Labels{"label": label}
	m := &Metrics{
		reg:    reg,
		cl:     cl,
		max:    maxBackends,
		byName: map[string]*backend{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: Requests, ConstLabels: cl,
			Help: "Requests (RPCs, WebSocket round trips) that ended, by the backend that answered (\"\" none: a failed dial)."}, []string{"backend"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: Errors, ConstLabels: cl,
			Help: "Failed requests by backend and kind (as the report's error_kinds)."}, []string{"backend", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: Latency, ConstLabels: cl,
			Help:    "Latency of requests that got a response, from their intended time, by backend.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			// Native histograms where the scraper supports them (10% buckets).
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"backend"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ConnectionsOpen, ConstLabels: cl,
			Help: "Connections whose first request ended, by backend."}, []string{"backend"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ConnectionsClose, ConstLabels: cl,
			Help: "Connections that ended after a request, by reason (server-close, max-age, error, ...)."}, []string{"reason"}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: Info, ConstLabels: prometheus.Labels{"label": label, "url": url, "version": version},
		Help: "The running hammer: always 1, its labels say which."})
	info.Set(1)
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.latency, m.opened, m.closed, info} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// OpenModel adds the open model's figures (the closed model has none, so
// nothing stands for "not measured"): Due, the requests due so far, exact
// from the rate and the run's clock, so that Due minus Requests is the
// backlog (requests in flight included); and, once SetUnsent is called at the
// end of the run, Unsent: the engine knows a request was never sent only then.
func (m *Metrics) OpenModel(rate float64, start time.Time) error {
	m.rate, m.start = rate, start
	due := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: Due, ConstLabels: m.cl,
		Help: "Open model: requests due so far at the target rate (sent or not); frozen at the run's end."},
		func() float64 {
			if n := m.dueAtEnd.Load(); n >= 0 {
				return float64(n)
			}
			return float64(client.Due(m.rate, time.Since(m.start)))
		})
	m.dueAtEnd.Store(-1)
	return m.reg.Register(due)
}

// SetUnsent records, at the end of an open-model run, the requests that were
// due but never sent, and freezes Due at the engine's count of the due
// (client.Stats: Requests + Unsent). The engine counts up to the stop or the
// duration limit, whichever came first; the run's elapsed time also covers
// the last answers, and the rate times it would count more.
func (m *Metrics) SetUnsent(unsent, due int64) error {
	m.dueAtEnd.Store(due)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: Unsent, ConstLabels: m.cl,
		Help: "Open model: requests that were due before the run ended but never sent (set when the run ends)."})
	g.Set(float64(unsent))
	return m.reg.Register(g)
}

// Record counts one result; socket records are not requests.
func (m *Metrics) Record(r *client.Result) {
	if r.Kind != client.KindRequest {
		return
	}
	b := m.last
	if b == nil || b.name != r.Backend {
		b = m.backend(r.Backend)
		m.last = b
	}
	b.requests.Inc()
	if r.Failed() {
		m.errors.WithLabelValues(b.name, report.ErrorKind(r)).Inc()
	}
	if r.Err == "" {
		b.latency.Observe(max(r.Latency, 0).Seconds())
	}
	if r.Conn != 0 && r.ConnReq == 1 {
		b.opened.Inc()
	}
	if r.Close != client.CloseNone {
		m.closed.WithLabelValues(r.Close.String()).Inc()
	}
}

func (m *Metrics) backend(name string) *backend {
	if b, ok := m.byName[name]; ok {
		return b
	}
	label := name
	if name != "" && m.max > 0 && len(m.byName) >= m.max {
		if b, ok := m.byName[report.OtherBackend]; ok {
			return b
		}
		label = report.OtherBackend
	}
	b := &backend{name: label, requests: m.requests.WithLabelValues(label),
		latency: m.latency.WithLabelValues(label), opened: m.opened.WithLabelValues(label)}
	m.byName[label] = b
	return b
}
