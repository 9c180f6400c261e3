// Command barehttp is the bare net/http server bench/serve.sh measures
// kaload serve against: the same answer (backend header, a count, a body of
// the same size) with nothing else. With --close-every N it answers
// "Connection: close" on every Nth request of a connection, the least a
// server can do to recycle connections: the reference for kaload serve
// --max-requests N.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

type connKey struct{}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	hostname := flag.String("hostname", "bench", "backend name to answer with")
	closeEvery := flag.Int64("close-every", 0, "answer Connection: close on every Nth request of a connection (0: never)")
	flag.Parse()
	var total atomic.Int64
	srv := &http.Server{Addr: *listen} // DefaultServeMux, as the first version: the reference stays the same
	if *closeEvery > 0 {
		// One goroutine serves a connection's requests: a plain counter does.
		srv.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, new(int64))
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n := total.Add(1)
		h := w.Header()
		h.Set("Accept-Request-Hostname", *hostname)
		h.Set("Total-Request", strconv.FormatInt(n, 10))
		if c, ok := r.Context().Value(connKey{}).(*int64); ok {
			if *c++; *c%*closeEvery == 0 {
				h.Set("Connection", "close")
			}
		}
		fmt.Fprintf(w, "backend=%s request=%d\n", *hostname, n)
	})
	log.Fatal(srv.ListenAndServe())
}
