// Package server is kaload's test server and a connection recycler for any
// net/http service.
//
// Kubernetes balances connections, not requests: a keep-alive client stays
// on the pods it first reached. A Recycler ends each connection after a
// number of requests or an age, the way nginx's keepalive_requests or gRPC's
// MaxConnectionAge do: the last response carries "Connection: close"
// (HTTP/1.1) or triggers GOAWAY (HTTP/2), the client finishes that request
// and dials again, and no request fails.
//
// Server builds on it: a load endpoint that names its backend in a header,
// /healthz, /readyz, Prometheus /metrics, load shaping (CPU, delay, size,
// capacity) and graceful draining.
package server
