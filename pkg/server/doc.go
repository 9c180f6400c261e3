// Package server is kaload's test server: a load endpoint that names its
// backend in a header, /healthz, /readyz, Prometheus /metrics, load shaping
// (CPU, delay, size, capacity) and graceful draining.
//
// It recycles connections with package recycle, which any Go net/http
// service can import on its own (standard library only).
package server
