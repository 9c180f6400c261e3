package server

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kaload/kaload/pkg/field"
	"github.com/kaload/kaload/pkg/server/recycle"
)

// register creates the collectors. Counters read the atomics at scrape
// time, so the request path pays nothing for metrics.
func (s *Server) register() error {
	stats := func(f func(recycle.Stats) float64) func() float64 {
		return func() float64 { return f(s.rc.Stats()) }
	}
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_requests_total",
			Help: "Load requests answered on / (the Total-Request numbers that went out; one a client reset before its answer left is in kaload_requests_abandoned_total).",
		}, func() float64 { return float64(s.answered()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_http_requests_total",
			Help: "HTTP requests on every path, including health checks and scrapes.",
		}, stats(func(r recycle.Stats) float64 { return float64(r.Requests) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kaload_connections_active",
			Help: "Open client connections.",
		}, stats(func(r recycle.Stats) float64 { return float64(r.ActiveConns) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_connections_total",
			Help: "Client connections accepted.",
		}, stats(func(r recycle.Stats) float64 { return float64(r.TotalConns) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_requests_abandoned_total",
			Help: "Load requests on / the client reset or left before the answer (HTTP/2 rapid reset among them); not in kaload_requests_total.",
		}, func() float64 { return float64(s.abandoned.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_request_body_timeouts_total",
			Help: "Load requests whose body did not arrive within --read-timeout (or stalled during the drain); answered 408.",
		}, func() float64 { return float64(s.bodyTimeouts.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_request_body_errors_total",
			Help: "Load requests whose body was malformed or cut; answered 400.",
		}, func() float64 { return float64(s.bodyErrors.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_http2_streams_reset_total",
			Help: "HTTP/2 streams the client reset (RST_STREAM frames received).",
		}, func() float64 { return float64(s.h2Resets.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_http2_reset_flood_connections_total",
			Help: "HTTP/2 connections closed because the client reset more than half of its streams, at least 200 (rapid reset, CVE-2023-44487).",
		}, func() float64 { return float64(s.resetFloods.Load()) }),
		s.perConn,
	}
	for _, r := range recycle.Reasons() {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "kaload_connections_recycled_total",
			Help:        "Connections the server ended, by reason.",
			ConstLabels: prometheus.Labels{"reason": r.String()},
		}, stats(func(rs recycle.Stats) float64 { return float64(rs.Recycled[r]) })))
	}
	// The Go runtime and process collectors go to the server's own registry
	// only: an operator watching a pod needs go_goroutines,
	// process_open_fds and process_resident_memory_bytes beside kaload's
	// counters, while a caller's Registerer (often the default registry)
	// usually has them already and would refuse duplicates.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := s.registry.Register(c); err != nil {
			return fmt.Errorf("register runtime metrics: %w", err)
		}
	}
	cs = append(cs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kaload_websockets_open",
			Help: "Open WebSockets.",
		}, func() float64 { return float64(s.ws.active.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_websockets_total",
			Help: "WebSockets upgraded on " + WebSocketPath + ".",
		}, func() float64 { return float64(s.ws.total.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kaload_websocket_messages_total",
			Help: "WebSocket messages echoed.",
		}, func() float64 { return float64(s.ws.messages.Load()) }),
	)
	for why := SocketClose(0); why < numSocketCloses; why++ {
		code := ""
		if c := why.Code(); c != 0 {
			code = strconv.Itoa(c)
		}
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "kaload_websockets_closed_total",
			Help:        "WebSockets ended, by reason and the close status the server sent (client: the client's choice).",
			ConstLabels: prometheus.Labels{"reason": why.String(), "code": code},
		}, func() float64 { return float64(s.ws.closed[why].Load()) }))
	}
	cs = append(cs, s.grpcCollectors()...)
	for _, c := range cs {
		if err := s.registry.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
		if s.cfg.Registerer != nil {
			if err := s.cfg.Registerer.Register(c); err != nil {
				return field.Errorf("Registerer", "%w", err)
			}
		}
	}
	return nil
}
