package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaload/kaload/internal/loadmetrics"
	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
	"github.com/kaload/kaload/pkg/server"
)

// scrape reads url's /metrics.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// sample is the value of name's series with the given labels (counter, or
// a histogram's count); -1 when absent.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
		return m.Counter.GetValue()
	}
	return -1
}

// scrapeOnWrite scrapes once when the summary is first written: the run
// is over, every result recorded, and /metrics still served.
type scrapeOnWrite struct {
	bytes.Buffer
	url  string
	once sync.Once
	fams map[string]*dto.MetricFamily
	err  error
}

func (w *scrapeOnWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { w.fams, w.err = scrape(w.url) })
	return w.Buffer.Write(p)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestHammerMetrics scrapes --metrics-addr mid-run and once the run is
// over, and checks the last scrape's per-backend counts against the
// results file. The server answers in 5 ms, so the last request due
// (at 1497.5 ms) ends after the 1.5 s limit: the final due count must still
// be the engine's 600, not 400/s times the elapsed time (601).
func TestHammerMetrics(t *testing.T) {
	url := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 5, Delay: 5 * time.Millisecond}).URL
	addr := freePort(t)
	metricsURL := "http://" + addr + "/metrics"
	file := filepath.Join(t.TempDir(), "run.kld")
	out := &scrapeOnWrite{url: metricsURL}
	var errb lockedBuffer
	mid := make(chan float64, 1)
	go func() {
		// Mid-run: the first scrape that sees requests.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if fams, err := scrape(metricsURL); err == nil {
				if v := sample(fams, loadmetrics.Requests, "backend", "pod-a", "label", "ci-7"); v > 0 {
					mid <- v
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		mid <- -1
	}()
	code := run(context.Background(), []string{"hammer", "--url", url, "-d", "1500ms", "-c", "4", "--rate", "400",
		"--label", "ci-7", "--metrics-addr", addr, "-o", file, "-q"},
		&streams{In: strings.NewReader(""), Out: out, Err: &errb})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if v := <-mid; v <= 0 {
		t.Errorf("no mid-run scrape saw a request (%v)", v)
	}
	if !strings.Contains(errb.String(), "kaload: metrics on http://"+addr+"/metrics") {
		t.Errorf("stderr does not say where the metrics are: %q", errb.String())
	}
	if out.err != nil {
		t.Fatalf("scrape after the run: %v", out.err)
	}
	if _, err := http.Get(metricsURL); err == nil {
		t.Error("/metrics still served after the hammer returned")
	}

	// What the results file holds, counted by hand.
	rd, err := results.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var requests, answered, opened, closed float64
	var r client.Result
	for {
		err := rd.Read(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Backend != "pod-a" {
			t.Fatalf("record from %q", r.Backend)
		}
		requests++
		if r.Err == "" {
			answered++
		}
		if r.ConnReq == 1 {
			opened++
		}
		if r.Close == client.CloseServer {
			closed++
		}
	}
	tr, ok := rd.Trailer()
	rd.Close()
	if !ok || tr.Unsent < 0 {
		t.Fatalf("trailer %+v (present %v): the open model's unsent count is missing", tr, ok)
	}
	if requests < 100 {
		t.Fatalf("only %v requests in the file", requests)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{loadmetrics.Requests, []string{"backend", "pod-a", "label", "ci-7"}, requests},
		{loadmetrics.Latency, []string{"backend", "pod-a"}, answered},
		{loadmetrics.ConnectionsOpen, []string{"backend", "pod-a"}, opened},
		{loadmetrics.ConnectionsClose, []string{"reason", "server-close"}, closed},
		// Open model: every request due was sent or counted unsent.
		{loadmetrics.Unsent, []string{"label", "ci-7"}, float64(tr.Unsent)},
		{loadmetrics.Due, []string{"label", "ci-7"}, requests + float64(tr.Unsent)},
	} {
		if got := sample(out.fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, the results file says %v", c.name, c.labels, got, c.want)
		}
	}
	if got := sample(out.fams, loadmetrics.Info, "label", "ci-7", "url", url); got < 0 {
		t.Errorf("%s lacks the run's label and URL", loadmetrics.Info)
	}
}

// lockedBuffer is a bytes.Buffer safe for the hammer's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
