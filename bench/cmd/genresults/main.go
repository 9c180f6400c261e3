// Command genresults writes a synthetic results file for benchmarking
// 'kaload report': a long keep-alive run over a few backends with connections
// recycled every 100 requests, shaped like what kaload hammer records.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

func main() {
	n := flag.Int64("n", 10_000_000, "results to write")
	backends := flag.Int("backends", 3, "distinct backends")
	conns := flag.Int("c", 64, "connections kept busy")
	out := flag.String("o", "results.kld", "results file (.jsonl = JSON Lines)")
	step := flag.Duration("step", 60*time.Microsecond, "start offset between consecutive requests: with a smaller one, more records fill the same run (e.g. -n 10000000 -step 6us spans the minute -n 1000000 does)")
	flag.Parse()
	if *step <= 0 {
		fmt.Fprintln(os.Stderr, "genresults: -step must be positive, e.g. -step 6us")
		os.Exit(2)
	}
	if err := write(*out, *n, *backends, *conns, *step); err != nil {
		fmt.Fprintln(os.Stderr, "genresults:", err)
		os.Exit(1)
	}
}

func write(path string, n int64, backends, conns int, step time.Duration) error {
	names := make([]string, backends)
	for i := range names {
		names[i] = "pod-" + strconv.Itoa(i)
	}
	start := time.Now()
	w, err := results.CreateFile(path, results.Header{Kaload: "genresults", URL: "http://svc/", Start: start, Connections: conns, Requests: n})
	if err != nil {
		return err
	}
	connID := make([]uint64, conns)
	connReq := make([]uint32, conns)
	next := uint64(0)
	var r client.Result
	for i := int64(0); i < n; i++ {
		c := int(i % int64(conns))
		if connID[c] == 0 || connReq[c] == 100 {
			next++
			connID[c], connReq[c] = next, 0
		}
		connReq[c]++
		r = client.Result{
			Seq: uint64(i), Start: time.Duration(i) * step,
			Latency: time.Duration(200+i*7919%5000) * time.Microsecond,
			Status:  200, Backend: names[int(connID[c])%backends], Conn: connID[c], ConnReq: connReq[c],
			Bytes: 64, ServerTotal: i,
		}
		if connReq[c] == 100 {
			r.Close = client.CloseServer
		}
		if i%1000 == 999 {
			r.Status = 503
		}
		if err := w.Write(&r); err != nil {
			return err
		}
	}
	return w.Close()
}
