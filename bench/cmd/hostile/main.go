// Command hostile is a misbehaving server for bench/abuse-hammer.sh: the
// peers that issue 16 found growing 'kaload hammer' without bound.
//
//	hostile -listen 127.0.0.1:9000 -mode unique-backend       # HTTP/1: a new backend name in every response
//	hostile -mode unique-backend -name-len 8000               # ... of 8,000 bytes
//	hostile -listen 127.0.0.1:9000 -mode continuation-flood   # h2c: header CONTINUATION frames without end
//	hostile -listen 127.0.0.1:9000 -mode silent               # reads requests, never answers
//	hostile -mode unique-jsonl -n 200000 -o crafted.jsonl     # a results file naming 200,000 backends
//	hostile -mode unique-kld -n 200000 -o crafted.kld         # the same in the binary form (this kaload's version)
//
// It runs until killed (the servers) or the file is written.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kaload/kaload/internal/hostile"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to serve on")
	mode := flag.String("mode", "unique-backend", "unique-backend, continuation-flood, silent, unique-jsonl or unique-kld")
	nameLen := flag.Int("name-len", 0, "unique-backend: pad names to about this many bytes")
	n := flag.Int("n", 200_000, "unique-jsonl: records (one backend name each)")
	out := flag.String("o", "crafted.jsonl", "unique-jsonl: the file to write")
	flag.Parse()
	var err error
	switch *mode {
	case "unique-backend":
		var count atomic.Int64
		pad := strings.Repeat("x", max(*nameLen-20, 0))
		err = http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(client.DefaultBackendHeader, "pod-"+strconv.FormatInt(count.Add(1), 10)+pad)
		}))
	case "continuation-flood":
		err = flood(*listen)
	case "silent":
		var ln net.Listener
		if ln, err = net.Listen("tcp", *listen); err == nil {
			hostile.Serve(ln, hostile.Silent)
			select {} // until killed
		}
	case "unique-jsonl":
		err = uniqueJSONL(*out, *n)
	case "unique-kld":
		err = uniqueKLD(*out, *n)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
}

// flood answers every h2c stream with a HEADERS frame that never ends and
// CONTINUATION frames of fresh 16 KB header fields, as long as the client
// reads them (at most a minute per connection).
func flood(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go floodConn(c)
	}
}

func floodConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	hostile.FloodContinuation(c, 1<<40, nil)
}

// uniqueJSONL writes a JSON Lines results file whose every record names a
// new backend, as a hammer run against a unique-backend server records. It
// writes format version 1 by hand, which every kaload reads, so the figures
// before and after a change come from the same file.
func uniqueJSONL(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, `{"kaload_results":1,"header":{"kaload":"hostile","url":"http://hostile/","start":%q,"connections":1}}`+"\n",
		time.Now().UTC().Format(time.RFC3339Nano))
	for i := range n {
		fmt.Fprintf(w, `{"seq":%d,"start_ns":%d,"latency_ns":50000,"status":200,"backend":"pod-%d","conn":1,"conn_req":%d}`+"\n", i, i*1000, i, i+1)
	}
	fmt.Fprintf(w, `{"kaload_trailer":{"records":%d,"end":%q}}`+"\n", n, time.Now().UTC().Format(time.RFC3339Nano))
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// uniqueKLD writes the same records as uniqueJSONL in the binary form, with
// this tree's Writer (older binaries may not read its version).
func uniqueKLD(path string, n int) error {
	w, err := results.CreateFile(path, results.Header{Kaload: "hostile", URL: "http://hostile/", Start: time.Now(), Connections: 1})
	if err != nil {
		return err
	}
	for i := range n {
		r := client.Result{Seq: uint64(i), Start: time.Duration(i) * time.Microsecond, Latency: 50 * time.Microsecond,
			Status: 200, Backend: "pod-" + strconv.Itoa(i), Conn: 1, ConnReq: uint32(i + 1), ServerTotal: -1}
		if err := w.Write(&r); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}
