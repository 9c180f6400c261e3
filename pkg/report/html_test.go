package report

import (
	"bytes"
	"flag"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

var screenshotOut = flag.String("screenshot", "", "keep the browser test's screenshot in this file")

func TestLatBucket(t *testing.T) {
	tests := []struct {
		us     uint32
		lo, hi float64
	}{
		{0, 0, 1},
		{7, 7, 8},
		{8, 8, 9},
		{15, 15, 16},
		{16, 16, 18},
		{1000, 960, 1024},    // 2^9 = 512, 8 buckets of 64
		{10000, 9216, 10240}, // 2^13 = 8192, 8 buckets of 1024
		{100000, 98304, 106496},
		{3600000000, 3489660928, 3758096384},
	}
	for _, tt := range tests {
		lo, hi := latBucketRange(latBucket(tt.us))
		if lo != tt.lo || hi != tt.hi {
			t.Errorf("bucket of %dµs = [%v, %v), want [%v, %v)", tt.us, lo, hi, tt.lo, tt.hi)
		}
		if latBucket(tt.us) >= latBuckets {
			t.Errorf("bucket of %dµs = %d, past %d", tt.us, latBucket(tt.us), latBuckets)
		}
	}
}

// TestIntervalFigures checks per-interval p50/p99 and connections against
// values computed by hand from the buckets.
func TestIntervalFigures(t *testing.T) {
	a := NewAggregator(Options{})
	// Interval 0: 50 at 1ms, 49 at 10ms, 1 at 100ms on 2 connections, the
	// second closed by the server. p50 = 50th value, 1ms: bucket
	// [960, 1024)µs, middle 992, clamped to the minimum 1000 -> 1ms. p99 =
	// 99th value, 10ms: bucket [9216, 10240)µs, middle 9728 -> 9.728ms.
	for i := range 100 {
		lat := time.Millisecond
		switch {
		case i >= 99:
			lat = 100 * time.Millisecond
		case i >= 50:
			lat = 10 * time.Millisecond
		}
		r := client.Result{Start: time.Duration(i) * time.Millisecond, Latency: lat, Status: 200, Backend: "a",
			Conn: uint64(1 + i/50), ConnReq: uint32(1 + i%50), ServerTotal: -1}
		if i == 99 {
			r.Close = client.CloseServer
		}
		a.addT(&r)
	}
	// Interval 1: one refused dial (no latency, no connection).
	a.addT(&client.Result{Start: 1500 * time.Millisecond, Err: "connection refused", ServerTotal: -1})
	// Interval 2: one answer of 3ms on a new connection, closed with an error.
	a.addT(&client.Result{Start: 2500 * time.Millisecond, Latency: 3 * time.Millisecond, Status: 200, Backend: "a", Conn: 3, ConnReq: 1, Close: client.CloseError, ServerTotal: -1})
	ivs := a.Summary().Timeline.Intervals
	if len(ivs) != 3 {
		t.Fatalf("%d intervals, want 3", len(ivs))
	}
	want := []struct {
		p50, p99 float64 // 0: nil
		opened   uint64
		closed   map[string]uint64
	}{
		{1, 9.728, 2, map[string]uint64{"server-close": 1}},
		{0, 0, 0, nil},
		{3, 3, 1, map[string]uint64{"error": 1}}, // clamped into [min, max]
	}
	for k, w := range want {
		iv := ivs[k]
		if w.p50 == 0 {
			if iv.LatencyP50 != nil || iv.LatencyP99 != nil {
				t.Errorf("interval %d: latency %v/%v, want none (nothing answered)", k, iv.LatencyP50, iv.LatencyP99)
			}
		} else if iv.LatencyP50 == nil || *iv.LatencyP50 != w.p50 || *iv.LatencyP99 != w.p99 {
			t.Errorf("interval %d: p50/p99 = %v/%v, want %v/%v", k, iv.LatencyP50, iv.LatencyP99, w.p50, w.p99)
		}
		if iv.Opened != w.opened || len(iv.Closed) != len(w.closed) {
			t.Errorf("interval %d: opened %d closed %v, want %d %v", k, iv.Opened, iv.Closed, w.opened, w.closed)
		}
		for r, n := range w.closed {
			if iv.Closed[r] != n {
				t.Errorf("interval %d: closed[%s] = %d, want %d", k, r, iv.Closed[r], n)
			}
		}
	}
}

// TestHTMLNoData: charts without data say so and draw nothing.
func TestHTMLNoData(t *testing.T) {
	tests := []struct {
		name string
		r    *Report
		want []string // data-chart ids that must say "no data"
	}{
		{"empty", &Report{Summary: NewAggregator(Options{}).Summary()}, []string{"rps", "share", "latency", "backend-latency", "connections"}},
		{"all-failed", scenario(t, "all-failed"), []string{"latency", "backend-latency", "connections"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, tt.r, "html"); err != nil {
				t.Fatal(err)
			}
			page := buf.String()
			for _, id := range tt.want {
				if !strings.Contains(page, `<svg class="chart nodata" data-chart="`+id+`"`) {
					t.Errorf("chart %s does not say no data", id)
				}
				if m := regexp.MustCompile(`data-chart="` + id + `"[^>]*>.*?</svg>`).FindString(page); strings.Contains(m, "<polyline") {
					t.Errorf("chart %s draws a series without data", id)
				}
			}
		})
	}
}

// browserPage is the scale-up run with Kubernetes events: the page the
// browser test renders.
func browserPage(t *testing.T) (*Report, int) {
	t.Helper()
	a := NewAggregator(Options{})
	run, err := a.AddRun(results.Header{Kaload: "v0.test", Label: "hammer-0", URL: "http://web:8080/", Start: t0,
		Args: []string{"kaload", "hammer", "-c", "20", "-d", "10s", "http://web:8080/"}, Connections: 20})
	if err != nil {
		t.Fatal(err)
	}
	run.AddEvent(results.Event{T: 4 * time.Second, Kind: results.EventScale, Object: "deployment/web", Detail: "desired=3 current=2"})
	run.AddEvent(results.Event{T: 4800 * time.Millisecond, Kind: results.EventPodReady, Object: "pod/pod-c"})
	scaleUpWith(newSinkFeeder(run.Add, 10), []int{2, 5, 6, 7, 7})
	s := a.Summary()
	exps, err := ParseExpectations([]string{"rebalance<5s", "min_share>=0.1", "p99<5ms"})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Check(s, exps)
	// Markers: pod-c first seen, two events.
	return &Report{Summary: s, Expectations: res}, 3
}

// TestHTMLInBrowser renders the page in headless Chromium: it must load
// without console errors, its DOM must hold the charts' axes, series and
// markers, and the screenshot must show each backend's colour.
func TestHTMLInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian package chromium): the HTML report is not checked in a browser")
	}
	r, markers := browserPage(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := Render(&buf, r, "html"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	browse := func(args ...string) (stdout, stderr string) {
		t.Helper()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
			"--enable-logging=stderr", "--v=0", "--user-data-dir=" + t.TempDir()}
		cmd := exec.Command(chromium, append(append(base, args...), "file://"+page)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
			}
		case <-time.After(90 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("chromium %v did not finish in 90s", args)
		}
		return out.String(), errb.String()
	}

	dom, logs := browse("--dump-dom")
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "CONSOLE") || strings.Contains(l, "Uncaught") {
			t.Errorf("console message while loading: %s", l)
		}
	}
	if !strings.Contains(dom, "</html>") || !strings.Contains(dom, r.Verdict[:20]) {
		t.Fatalf("the page did not load: DOM %.300q", dom)
	}
	count := func(re string) int { return len(regexp.MustCompile(re).FindAllString(dom, -1)) }
	for _, id := range []string{"rps", "share", "latency", "connections"} {
		m := regexp.MustCompile(`(?s)<svg class="chart" data-chart="` + id + `".*?</svg>`).FindString(dom)
		if m == "" {
			t.Errorf("chart %s missing from the DOM", id)
			continue
		}
		for _, axis := range []string{`class="axis x"`, `class="axis y"`, `class="grid"`} {
			if !strings.Contains(m, axis) {
				t.Errorf("chart %s lacks %s", id, axis)
			}
		}
		// Every axis has labelled ticks: time up to 9.86s gives 0..8s or 0..9s.
		if n := strings.Count(m, `class="tick"`); n < 8 {
			t.Errorf("chart %s has %d ticks", id, n)
		}
		if n := strings.Count(m, `class="marker"`); n != markers {
			t.Errorf("chart %s has %d markers, want %d (pod-c first seen, 2 events)", id, n, markers)
		}
	}
	for _, b := range []string{"pod-a", "pod-b", "pod-c"} {
		if n := count(`class="series backend" data-series="` + b + `"`); n != 1 {
			t.Errorf("requests/s: %d series for %s, want 1", n, b)
		}
	}
	if n := count(`<rect class="share"`); n != 10*2+5 {
		t.Errorf("share: %d bars, want 25 (10 intervals of pod-a and pod-b, 5 of pod-c)", n)
	}
	for _, p := range []string{"p50", "p99"} {
		if n := count(`class="series ` + p + `"`); n != 1 {
			t.Errorf("latency: %d %s series, want 1", n, p)
		}
	}
	for _, fact := range []string{"http://web:8080/", "kaload hammer -c 20 -d 10s", "hammer-0", "2026-", "v0.test", "FAIL"} {
		if !strings.Contains(dom, fact) {
			t.Errorf("header lacks %q", fact)
		}
	}

	shot := filepath.Join(dir, "shot.png")
	browse("--window-size=1400,2400", "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if *screenshotOut != "" {
		if err := os.WriteFile(*screenshotOut, mustRead(t, shot), 0o644); err != nil {
			t.Error(err)
		}
	}
	// Each backend's Okabe-Ito colour covers a visible area.
	for i, b := range []string{"pod-a", "pod-b", "pod-c"} {
		col, _ := backendColour(i)
		if n := pixels(img, col); n < 500 {
			t.Errorf("screenshot shows %d pixels of %s's colour %s", n, b, col)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pixels counts the pixels of img within a small distance of colour #rrggbb.
func pixels(img image.Image, colour string) int {
	var want [3]int
	for i := range want {
		v, _ := strconv.ParseInt(colour[1+2*i:3+2*i], 16, 0)
		want[i] = int(v)
	}
	n := 0
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y++ {
		for x := bnd.Min.X; x < bnd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			d := abs(int(r>>8)-want[0]) + abs(int(g>>8)-want[1]) + abs(int(b>>8)-want[2])
			if d <= 12 {
				n++
			}
		}
	}
	return n
}

func abs(v int) int { return max(v, -v) }
