// Command barehttp is the bare net/http server bench/serve.sh measures
// kaload serve against: the same answer (backend header, a count, a body of
// the same size) with nothing else.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	hostname := flag.String("hostname", "bench", "backend name to answer with")
	flag.Parse()
	var total atomic.Int64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n := total.Add(1)
		h := w.Header()
		h.Set("Accept-Request-Hostname", *hostname)
		h.Set("Total-Request", strconv.FormatInt(n, 10))
		fmt.Fprintf(w, "backend=%s request=%d\n", *hostname, n)
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
