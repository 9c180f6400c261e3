// Package server is kaload's test server: a load endpoint that names its
// backend in a header, /healthz, /readyz, Prometheus /metrics, a WebSocket
// echo on /ws, a gRPC service (ServeGRPC), load shaping (CPU, delay, size,
// capacity) and graceful draining.
//
//	srv, err := server.New(server.Config{MaxRequests: 100})
//	err = srv.Serve(ctx, ln) // until ctx is done, then drains
//
// New reports each bad Config field as a *field.Error. The server recycles
// HTTP connections with package recycle, which any Go net/http service can
// import on its own (standard library only), and gRPC connections with
// package grpcrecycle. Header names are a contract (docs/design.md).
package server
