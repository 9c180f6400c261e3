// Command engine drives pkg/client the way kaload hammer does (results file +
// aggregator, or nothing) with an optional CPU profile, to find where a
// request's CPU goes. bench/run.sh measures the real kaload binary; this is
// for profiling only.
//
//	go run ./bench/cmd/engine -url http://127.0.0.1:8080/ -c 50 -d 5s -sink file -cpuprofile cpu.out
//	go tool pprof -top cpu.out
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
)

func main() {
	url := flag.String("url", "", "target URL")
	c := flag.Int("c", 50, "connections")
	d := flag.Duration("d", 5*time.Second, "duration")
	sink := flag.String("sink", "file", "none, agg (aggregator only) or file (results file + aggregator, like hammer -o)")
	out := flag.String("o", os.DevNull, "results file for -sink file")
	prof := flag.String("cpuprofile", "", "write a CPU profile here")
	h2c := flag.Bool("h2c", false, "cleartext HTTP/2 (prior knowledge)")
	h2 := flag.Bool("http2", false, "HTTP/2 over TLS (certificate not checked)")
	streams := flag.Int("streams", 1, "HTTP/2 and gRPC: requests in flight per connection")
	flag.Parse()
	cfg := client.Config{URL: *url, Connections: *c, Duration: *d, H2C: *h2c, HTTP2: *h2, Insecure: *h2, Streams: *streams}
	if err := run(cfg, *sink, *out, *prof); err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(1)
	}
}

type recorder struct {
	w   *results.Writer
	run *report.Run
	err error
}

func (r *recorder) Record(res *client.Result) {
	if r.w != nil && r.err == nil {
		r.err = r.w.Write(res)
	}
	if r.run != nil {
		r.run.Add(res)
	}
}

func run(cfg client.Config, sink, out, prof string) error {
	h := results.Header{URL: cfg.URL, Start: time.Now(), Connections: cfg.Connections, Duration: cfg.Duration, Kaload: "bench"}
	rec := &recorder{}
	switch sink {
	case "none":
	case "file":
		w, err := results.CreateFile(out, h)
		if err != nil {
			return err
		}
		rec.w = w
		fallthrough
	case "agg":
		run, err := report.NewAggregator(report.Options{}).AddRun(h)
		if err != nil {
			return err
		}
		rec.run = run
	default:
		return fmt.Errorf("-sink: %q is not none, agg or file", sink)
	}
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	st, err := client.Run(context.Background(), cfg, rec)
	if err != nil {
		return err
	}
	if rec.w != nil {
		if err := rec.w.Close(); err != nil {
			return err
		}
	}
	if rec.err != nil {
		return rec.err
	}
	fmt.Printf("%d requests, %d errors, %d connections, %.0f req/s\n", st.Requests, st.Errors, st.Connections, float64(st.Requests)/st.Elapsed.Seconds())
	return nil
}
