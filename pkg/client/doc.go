// Package client is kaload's keep-alive load engine: it keeps a fixed number of
// connections busy, redials when the server recycles one, and emits one Result
// per request saying which backend answered and on which connection.
//
// HTTP/1.1 is hand-written: the request is rendered once, responses are
// parsed strictly (status line, Content-Length, chunked, Connection) and a
// malformed one becomes an error Result. The hot path allocates nothing;
// backend names are interned per worker. Plain http:// runs on Linux go to an
// event-loop engine: GOMAXPROCS epoll loops of non-blocking sockets, a few
// hundred bytes of state per connection slot and no goroutine per slot (about
// 2 KB of RSS per connection at 18,000 connections). TLS, a custom
// Config.Dial and other systems use one goroutine per slot on net.Conn; both
// engines follow the same rules and parse with the same line functions.
// HTTP/2 (TLS with ALPN, or h2c with prior knowledge) and unary gRPC calls run
// on a hand-written HTTP/2 client (h2core.go, h2work.go): one connection per
// slot, never a pool, so connections stay countable; the slot's goroutine
// drives it (Config.Streams requests in flight), the header block is encoded
// once per run, each request's frames go in one write, and gRPC answers get
// grpc-go's status codes. Server-streaming gRPC calls, reflection and .proto
// resolution use grpc-go.
// WebSocket (ws://, wss://; github.com/gorilla/websocket) keeps one socket per
// slot: one Result per message round trip, and one KindSocket Result per
// socket (its life and close status), from which reports count the sockets
// each backend holds over time.
//
// In the closed model with a request
// count every slot gets an equal share (N/C, the first N%C one more), so every
// request is sent and recycling arithmetic is exact. Under Config.Rate the
// slots take requests in order of their intended send time, and latency runs
// from that time (no coordinated omission). Results reach the Sink one at a
// time through a mutex; per-slot Stats are summed when the slots end.
//
//	stats, err := client.Run(ctx, client.Config{URL: "http://svc:8080/", Duration: time.Minute}, sink)
//
// Run returns an error only for an invalid Config: Config.Validate reports
// each bad field as a *field.Error.
package client
