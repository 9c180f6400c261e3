package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kaload/kaload/internal/kubewatch"
	"github.com/kaload/kaload/internal/live"
	"github.com/kaload/kaload/internal/loadmetrics"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
)

type hammerOptions struct {
	Client client.Config

	Output string // results file; "-" streams it to stdout
	Label  string
	Quiet  bool
	Live   bool // a line per --interval on stderr when it is not a terminal
	Wide   bool // the full backend table on a narrow terminal
	// MetricsAddr serves /metrics (internal/loadmetrics) while running; "" off.
	MetricsAddr string
	Format      string // one of report.Formats
	Expect      []string
	JUnit       string
	Interval    time.Duration
	CPUs        int // GOMAXPROCS for the run; 0 = every CPU
	// CPUsSet: --cpus was given. Unset, a target on this host gets one CPU
	// (wrk -t1's budget) and the server the rest.
	CPUsSet bool
	// MaxBackends caps the backends the summary tracks one by one
	// (report.Options.MaxBackends); the results file keeps every name.
	MaxBackends int
	// Backends are pods known to exist: one that got nothing counts in the
	// summary with zero requests (report.Options.Backends).
	Backends []string
	Kube     watchOptions // --watch, --namespace, --kubeconfig
	// TargetRebalance is the recommendation's goal (report.Options.TargetRebalance).
	TargetRebalance time.Duration

	// Set by the command from the flags that were given.
	Args         []string
	Meta         map[string]string
	Expectations []report.Expectation
}

func newCmdHammer(s *streams, runF func(context.Context, *hammerOptions) error) *cobra.Command {
	opts := &hammerOptions{}
	var headers []string
	var body, message string
	var messageSize int
	var g grpcFlags
	cmd := &cobra.Command{
		Use:   "hammer --url URL",
		Short: "Send keep-alive load and record which backend answered each request",
		Long: `Keep -c connections busy against --url, the way a long-lived client does,
and record for every response which backend answered it (the
Accept-Request-hostname header, see --backend-header; the remote address
when it is missing) and on which connection. When the server recycles a
connection (Connection: close, HTTP/2 GOAWAY) hammer finishes that response
and dials again at once; the request does not fail.

The run stops after --duration (default 10s; unlimited when only
--requests is given) or --requests, whichever comes first, or on Ctrl-C:
the requests in flight finish, the results file is then complete and the
summary is printed. A second Ctrl-C ends the requests in flight at once
(recorded as "interrupted"). A results file that cannot be written (disk
full, closed pipe) stops the run the same way: the summary is printed
from memory and the exit code is 1.

Without --rate every connection sends its next request as soon as the last
one is answered (closed model). With --rate the total rate is fixed and
latency is measured from each request's intended send time, so a stalled
server cannot hide behind coordinated omission.

A ws:// or wss:// --url opens -c WebSockets (at --connect-rate per second)
and sends --message on each, echoed back by the server: one result per
round trip, naming the backend from the handshake header, else the answer
to a "whoami" message, else the peer address. A socket the server closes
(1012 at its limit, 1001 when it drains) is reopened after
--reconnect-delay; that is a close reason, not an error. --idle --rate 0
holds the sockets with pings only and records each socket's life, for
counting sockets per pod.

-o writes every result to a file for 'kaload report' (binary; a name
ending in .jsonl selects JSON Lines; '-' streams the binary form to stdout
and moves the summary to stderr).

gRPC: --url grpc://HOST:PORT (cleartext HTTP/2) or grpcs://HOST:PORT (TLS;
--insecure, --cacert) calls --call SERVICE/METHOD (default kaload's own
kaload.v1.Kaload/Ping) with the request --data as JSON (or @FILE), one gRPC
connection per -c slot. Message types come from --protoset or --proto
files, else from the server's reflection. -H adds metadata. The backend is
the header metadata named by --backend-header, else the trailer's, else the
peer address; a GOAWAY is the connection's close reason and failed RPCs
are counted by status code. --stream server keeps one server-streaming RPC
open per slot and records every message it receives, reopening the stream
when it ends.

` + watchHelp + `

` + report.RulesHelp() + `

` + report.ServerCountHelp,
		Example: `  kaload hammer --url http://127.0.0.1:8080/ -c 50 -d 30s
  kaload hammer --url http://svc:8080/ -n 100000 -c 20 -o run.kld --expect 'backends>=3' --expect 'min_share>=0.2'
  kaload hammer --url http://svc:8080/ --rate 2000 -d 5m --label "$JOB_COMPLETION_INDEX" -o - > run.kld
  kaload hammer --url https://svc/ --http2 --insecure -H 'Authorization: Bearer x' --format json
  kaload hammer --url http://svc:8080/ --h2c -c 10 --streams 10 -d 30s   # 100 requests in flight on 10 connections
  kaload hammer --url ws://svc:8080/ws -c 200 --connect-rate 50 --rate 1000 -d 5m --message-size 512
  kaload hammer --url ws://svc:8080/ws -c 2000 --idle --rate 0 -d 10m --expect 'min_socket_share>=0.2'

  kaload hammer --url grpc://svc:9090 -c 50 -d 30s
  kaload hammer --url grpc://svc:9090 --call helloworld.Greeter/SayHello --data '{"name":"k"}' --proto helloworld.proto
  kaload hammer --url grpc://svc:9090 --call kaload.v1.Kaload/Stream --stream server -c 20 -d 1m
  kaload hammer --url http://web:8080/ -d 5m --watch deployment/web --namespace shop --expect 'endpoint_to_first_request<5s'
  kaload hammer --url http://web:8080/ -d 10m --metrics-addr :9100 --live   # Prometheus /metrics, a line per second in the log`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.apply(cmd.Flags(), &opts.Client, &body); err != nil {
				return err
			}
			if err := opts.complete(cmd.Flags(), headers, body); err != nil {
				return err
			}
			if err := opts.completeWS(message, messageSize); err != nil {
				return err
			}
			if err := opts.Kube.complete(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runHammer(cmd.Context(), s, opts)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	c := &opts.Client
	f.StringVar(&c.URL, "url", "", "target `URL` (http://, https://, ws://, wss://, grpc:// or grpcs://)")
	f.IntVarP(&c.Connections, "connections", "c", client.DefaultConnections, "keep-alive connections kept busy")
	f.DurationVarP(&c.Duration, "duration", "d", 10*time.Second, "run this long (unlimited when only --requests is given)")
	f.Int64VarP(&c.Requests, "requests", "n", 0, "send exactly this many requests (0 = until --duration)")
	f.Float64Var(&c.Rate, "rate", 0, "total requests per second (open model); 0 = as fast as answered")
	f.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout, including a redial")
	f.StringVarP(&c.Method, "method", "X", http.MethodGet, "HTTP method")
	f.StringArrayVarP(&headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	f.StringVar(&body, "body", "", "request body, or @FILE to read it from a file")
	f.BoolVar(&c.HTTP2, "http2", false, "HTTP/2 over TLS (ALPN h2)")
	f.BoolVar(&c.H2C, "h2c", false, "cleartext HTTP/2 with prior knowledge")
	f.BoolVar(&c.Insecure, "insecure", false, "skip TLS certificate verification")
	f.IntVar(&c.Streams, "streams", 1, "HTTP/2 (--h2c, --http2) and gRPC: N requests in flight on each connection, like h2load -m (each still one result)")
	f.IntVar(&c.MaxRequestsPerConn, "max-requests-per-conn", 0, "client-side recycling: close each connection after N requests (0 = never)")
	f.StringVar(&c.BackendHeader, "backend-header", client.DefaultBackendHeader, "response header (gRPC: metadata key) that names the backend")
	f.StringVar(&message, "message", "", "WebSocket message `TEXT`, or @FILE (default \""+client.DefaultMessage+"\")")
	f.IntVar(&messageSize, "message-size", 0, "WebSocket message of exactly N bytes (--message repeated to fill it)")
	f.StringVar(&c.Subprotocol, "subprotocol", "", "WebSocket subprotocol to offer")
	f.BoolVar(&c.Compression, "compression", false, "offer WebSocket permessage-deflate")
	f.Float64Var(&c.ConnectRate, "connect-rate", 0, "open at most R sockets per second, reconnects included (0 = no limit)")
	f.DurationVar(&c.ReconnectDelay, "reconnect-delay", 0, "wait this long (plus jitter) before reopening a socket the server closed")
	f.BoolVar(&c.Idle, "idle", false, "WebSocket: hold the sockets with pings only, no messages (with --rate 0)")
	f.DurationVar(&c.PingInterval, "ping-interval", client.DefaultPingInterval, "WebSocket --idle: ping each socket this often")
	g.register(f, c)
	f.StringVarP(&opts.Output, "output", "o", "", "write every result to `FILE` ('-' = stdout; .jsonl = JSON Lines)")
	f.StringVar(&opts.Label, "label", "", "run label recorded in the results file (e.g. a Job index)")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress bar")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on `ADDR` (e.g. :9100) while running: requests, errors and latency per backend, connections by close reason; with --rate also requests due and, at the end, due but never sent")
	f.BoolVar(&opts.Wide, "wide", false, "table: all backend columns on a narrow terminal")
	f.BoolVar(&opts.Live, "live", false, "when stderr is not a terminal (CI logs, kubectl logs): print one line per --interval with req/s, errors and the top backends' shares")
	f.StringVar(&opts.Format, "format", "table", "summary format: "+report.FormatHelp())
	f.StringArrayVar(&opts.Expect, "expect", nil, "assertion on the summary, e.g. 'min_share>=0.3' (repeatable; exit 3 on failure)")
	f.StringVar(&opts.JUnit, "junit", "", "write the --expect results as JUnit XML to `FILE`")
	f.DurationVar(&opts.Interval, "interval", time.Second, "timeline interval of the summary")
	f.StringSliceVar(&opts.Backends, "backends", nil, "pods known to exist: one that got nothing counts with 0 requests")
	f.IntVar(&opts.MaxBackends, "max-backends", report.DefaultMaxBackends, "backends shown one by one, the rest fold into "+report.OtherBackend+"; -1: all")
	f.IntVar(&opts.CPUs, "cpus", 0, "use at most N CPUs, like wrk's -t (0 = all); unset: 1 when the URL resolves to this host (the server gets the rest), else all")
	opts.Kube.addFlags(f)
	f.DurationVar(&opts.TargetRebalance, "target-rebalance", report.DefaultTargetRebalance, "recommend recycling reaching fair share within `D`")
	return cmd
}

// maxMessageSize bounds --message-size and @FILE messages.
const maxMessageSize = 64 << 20

// completeWS reads the WebSocket message flags.
func (o *hammerOptions) completeWS(message string, size int) error {
	if message == "" && size == 0 {
		return nil
	}
	b, err := messageSource(message, size, os.ReadFile)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	o.Client.Message = b
	if err := o.Client.Validate(); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}

// messageSource turns --message TEXT|@FILE and --message-size N into the
// payload: N > 0 repeats the text (default "kaload ") to exactly N bytes.
func messageSource(spec string, size int, readFile func(string) ([]byte, error)) ([]byte, error) {
	if size < 0 || size > maxMessageSize {
		return nil, fmt.Errorf("--message-size %d: must be within 0..%d", size, maxMessageSize)
	}
	var b []byte
	if file, ok := strings.CutPrefix(spec, "@"); ok {
		if file == "" {
			return nil, errors.New("--message @: no file name after @")
		}
		data, err := readFile(file)
		if err != nil {
			return nil, fmt.Errorf("--message: %w", err)
		}
		if len(data) > maxMessageSize {
			return nil, fmt.Errorf("--message %s: %d bytes, more than %d", spec, len(data), maxMessageSize)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("--message %s: the file is empty", spec)
		}
		b = data
	} else {
		b = []byte(spec)
	}
	if size == 0 {
		return b, nil
	}
	if len(b) == 0 {
		b = []byte(client.DefaultMessage + " ")
	}
	out := make([]byte, size)
	for i := 0; i < size; i += len(b) {
		copy(out[i:], b)
	}
	return out, nil
}

// complete turns flag values into the run's configuration; every error is a
// usage error naming the flag.
func (o *hammerOptions) complete(f *pflag.FlagSet, headers []string, body string) error {
	c := &o.Client
	// The engine reads a zero as "use the default"; on the command line a
	// zero is a mistake.
	if c.Connections < 1 {
		return usageErrorf("--connections %d: must be at least 1", c.Connections)
	}
	if !f.Changed("duration") && c.Requests > 0 {
		c.Duration = 0
	}
	if len(headers) > 0 {
		c.Header = make(http.Header, len(headers))
		for _, h := range headers {
			name, value, ok := strings.Cut(h, ":")
			name = strings.TrimSpace(name)
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return usageErrorf("--header %q: want 'Name: value'", h)
			}
			c.Header.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
		}
	}
	if file, ok := strings.CutPrefix(body, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return usageErrorf("--body: %w", err)
		}
		c.Body = b
	} else if body != "" {
		c.Body = []byte(body)
	}
	if err := c.Validate(); err != nil {
		return &exitError{code: exitUsage, err: namedByFlags("hammer", err, nil)}
	}
	if err := checkOutput(&reportOutput{Format: o.Format}); err != nil {
		return err
	}
	if o.CPUs < 0 {
		return usageErrorf("--cpus %d: must not be negative", o.CPUs)
	}
	o.CPUsSet = f.Changed("cpus")
	if o.TargetRebalance <= 0 {
		return usageErrorf("--target-rebalance %s: must be positive", o.TargetRebalance)
	}
	if o.Interval <= 0 {
		return usageErrorf("--interval %s: must be positive", o.Interval)
	}
	if err := checkMaxBackends(o.MaxBackends); err != nil {
		return err
	}
	exps, err := report.ParseExpectations(o.Expect)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--expect: %w", err)}
	}
	o.Expectations = exps
	o.Args = []string{"kaload", "hammer"}
	o.Meta = map[string]string{}
	f.Visit(func(fl *pflag.Flag) {
		o.Args = append(o.Args, "--"+fl.Name+"="+fl.Value.String())
		o.Meta[fl.Name] = fl.Value.String()
	})
	return nil
}

func runHammer(ctx context.Context, s *streams, o *hammerOptions) error {
	// The progress bar, the recorder's warnings and the signal notices write
	// to stderr from their own goroutines.
	errw := &lockedWriter{w: s.Err}
	cpus, autoCPUs := o.CPUs, 0
	if !o.CPUsSet && runtime.GOMAXPROCS(0) > 1 && client.OnThisHost(ctx, o.Client.URL) {
		// A second thread mostly spins and takes the CPU the server needs:
		// measured against nginx on 2 cores, one CPU sends more (bench/run.sh).
		cpus = 1
		autoCPUs = runtime.GOMAXPROCS(0)
		if o.Meta == nil {
			o.Meta = map[string]string{}
		}
		o.Meta["cpus"] = "1 (auto: target on this host)"
	}
	if cpus > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cpus))
	}
	var watcher *kubewatch.Watcher
	var events *eventSink
	if len(o.Kube.Targets) > 0 {
		var err error
		if watcher, events, err = startWatch(ctx, &o.Kube, errw); err != nil {
			return err
		}
		defer watcher.Stop()
	}
	h := results.Header{
		Kaload:      versionString(),
		Label:       o.Label,
		URL:         o.Client.URL,
		Start:       time.Now(),
		Args:        o.Args,
		Connections: o.Client.Connections,
		Rate:        o.Client.Rate,
		Duration:    o.Client.Duration,
		Requests:    o.Client.Requests,
		Meta:        o.Meta,
	}
	summaryOut := s.Out
	var out *results.Writer
	var err error
	switch o.Output {
	case "":
	case "-":
		summaryOut = errw
		out, err = results.NewWriter(s.Out, results.FormatBinary, h)
	default:
		out, err = results.CreateFile(o.Output, h)
	}
	if err != nil {
		return outputError("--output", o.Output, outputClosed(err))
	}
	if events != nil {
		events.start(h.Start, out)
	}

	agg := report.NewAggregator(report.Options{Interval: o.Interval, MaxBackends: o.MaxBackends, Backends: o.Backends, TargetRebalance: o.TargetRebalance})
	run, err := agg.AddRun(h)
	if err != nil {
		return err
	}
	// A results file that cannot be written stops the run (as a first Ctrl-C
	// does): load that is not recorded proves nothing, and the summary of
	// what was sent still comes from memory.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	rec := &recorder{out: out, run: run, agg: agg, warn: errw, stopRun: stopRun}
	if o.MetricsAddr != "" {
		// Served until the summary is out: a last scrape sees every request.
		stopMetrics, err := serveMetrics(o, h, rec, errw)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	var bar *progress
	switch {
	case s.ErrTTY && !o.Quiet:
		rec.live = live.NewCounter(o.MaxBackends)
		bar = startProgress(errw, &o.Client, rec, o.Interval)
	case o.Live && !o.Quiet:
		rec.live = live.NewCounter(o.MaxBackends)
		bar = startLiveLines(errw, &o.Client, rec, o.Interval)
	}
	unwatch := watchInterrupts(ctx, s.Abort, errw, o.Client.Timeout)
	if autoCPUs > 0 {
		fmt.Fprintf(errw, "kaload: the target is on this host: using 1 CPU and leaving the rest to the server (--cpus 0: all %d)\n", autoCPUs)
	}
	cfg := o.Client
	cfg.Abort = s.Abort
	// The engine reports the start of its clock through the first results'
	// offsets; h.Start was taken just before it, close enough for wall time.
	stats, runErr := client.Run(runCtx, cfg, rec)
	unwatch()
	bar.stop()
	var eventsErr error
	if watcher != nil {
		watcher.Stop() // no event after this: the results file can close
		eventsErr = events.finish(run)
	}
	if runErr != nil {
		if out != nil {
			out.Close()
		}
		return namedByFlags("hammer", runErr, nil)
	}
	run.Finish(stats.Elapsed, stats.Unsent)
	if rec.metrics != nil && o.Client.Rate > 0 {
		if err := rec.metrics.SetUnsent(stats.Unsent, stats.Requests+stats.Unsent); err != nil {
			fmt.Fprintf(errw, "kaload: metrics: %v\n", err)
		}
	}
	var fileErr error
	if out != nil {
		if o.Client.Rate > 0 {
			out.SetUnsent(stats.Unsent)
		}
		written := rec.written
		if err := out.Close(); err != nil && rec.writeErr == nil {
			rec.writeErr = err
			written = out.Count() // the writer failed at its last flush or trailer
		}
		if rec.writeErr == nil && eventsErr != nil {
			fileErr = eventsErr
		}
		if rec.writeErr != nil {
			fileErr = fmt.Errorf("results file: %w; it holds at most the first %d of %d requests, readable by 'kaload report'",
				outputClosed(rec.writeErr), written, stats.Requests)
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintf(errw, "kaload: interrupted after %s; %d requests recorded\n", stats.Elapsed.Round(time.Millisecond), stats.Requests)
	}
	// Neither shows in the results: a retried request is recorded once, and a
	// failed dial only as the error of the request that needed it.
	if stats.Retries > 0 {
		fmt.Fprintf(errw, "kaload: %d requests were sent again (the server had closed an idle connection, or refused them unprocessed: GOAWAY, REFUSED_STREAM)\n", stats.Retries)
	}
	if stats.DialErrors > 0 {
		fmt.Fprintf(errw, "kaload: %d connection attempts failed\n", stats.DialErrors)
	}
	if len(stats.GoAways) > 0 {
		proto := "HTTP/2"
		if u := o.Client.URL; strings.HasPrefix(u, "grpc://") || strings.HasPrefix(u, "grpcs://") {
			proto = "gRPC"
		}
		fmt.Fprintf(s.Err, "kaload: %s connections ended by GOAWAY: %s\n", proto, goAwayLine(stats.GoAways))
	}
	sum := agg.Summary()
	if sum.FoldedBackends > 0 {
		fmt.Fprintf(errw, "kaload: warning: %s\n", report.FoldedLine(sum))
	}
	if sum.Requests > 0 && sum.Errors == sum.Requests {
		// Failed requests are data (exit 0), but a run where nothing
		// succeeded is almost always a setup mistake: say so where a person looks.
		fmt.Fprintf(s.Err, "kaload: ALL %d REQUESTS FAILED; no backend answered a single one:\n", sum.Requests)
		for _, l := range sum.ErrorCauses() {
			fmt.Fprintf(s.Err, "kaload:   %s\n", l)
		}
		fmt.Fprintf(s.Err, "kaload: (the exit code stays 0: failed requests are data; --expect 'error_rate<1%%' fails a CI job)\n")
	}
	summary := *s
	summary.Out = summaryOut
	summary.Err = errw
	if err := emitReport(sum, o.Expectations, reportOutput{Format: o.Format, JUnit: o.JUnit, Wide: o.Wide}, &summary); err != nil && (fileErr == nil || err != errExpectFailed) {
		return err
	}
	// The summary is out; a results file that failed is still a runtime error.
	return fileErr
}

// outputClosed names the usual cause of EPIPE: the reader of -o - went away
// (kaload hammer -o - | head -c 100).
func outputClosed(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("output closed (broken pipe): %w", err)
	}
	return err
}

// watchInterrupts says on stderr, when they happen, what a first Ctrl-C
// (ctx cancelled) and a second one (abort closed) do. The returned func
// ends the watch.
func watchInterrupts(ctx context.Context, abort <-chan struct{}, w io.Writer, timeout time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			if abort != nil {
				fmt.Fprintf(w, "kaload: stopping: waiting for the requests in flight (at most --timeout %s); Ctrl-C again aborts them\n", timeout)
			}
		case <-done:
			return
		}
		select {
		case <-abort:
			fmt.Fprintln(w, "kaload: aborting the requests in flight; they are recorded as interrupted")
		case <-done:
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// recorder is the engine's sink: the engine calls Record serially, so the
// results file and the aggregator see one request at a time; the counters
// are atomics because the progress bar reads them from its own goroutine.
type recorder struct {
	out      *results.Writer
	run      *report.Run
	agg      *report.Aggregator // for Folded: the run's handle adds, the aggregator counts
	writeErr error              // the first failed write; nothing more is written then
	written  int64              // records handed to out before writeErr
	stopRun  func()
	warn     io.Writer // stderr: said at once, not after the run
	folding  bool      // the aggregator started folding backend names

	requests, errors atomic.Int64
	backends         atomic.Int64
	live             *live.Counter // per-backend counts of the live view; nil without one
	metrics          *loadmetrics.Metrics
}

// serveMetrics registers the run's metrics and serves them on
// --metrics-addr; the returned func stops the server.
func serveMetrics(o *hammerOptions, h results.Header, rec *recorder, errw io.Writer) (func(), error) {
	reg := prometheus.NewRegistry()
	m, err := loadmetrics.New(reg, h.Label, h.URL, h.Kaload, o.MaxBackends)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", o.MetricsAddr, err)
	}
	if o.Client.Rate > 0 {
		if err := m.OpenModel(o.Client.Rate, h.Start); err != nil {
			return nil, err
		}
	}
	rec.metrics = m
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ends with Shutdown
	}()
	fmt.Fprintf(errw, "kaload: metrics on http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

func (r *recorder) Record(res *client.Result) {
	if r.out != nil && r.writeErr == nil {
		if err := r.out.Write(res); err != nil {
			r.writeErr = err
			// The Writer buffers a block: those before the last one it
			// flushed are on disk, fewer than written.
			fmt.Fprintf(r.warn, "kaload: results file: %v; stopping the run (requests in flight finish; the summary covers them all)\n", outputClosed(err))
			r.stopRun()
		} else {
			r.written++
		}
	}
	r.run.Add(res)
	if r.metrics != nil {
		r.metrics.Record(res)
	}
	if res.Kind != client.KindRequest {
		return // a socket record: counted by the aggregator, not as a request
	}
	if !r.folding {
		if n, _ := r.agg.Folded(); n > 0 {
			r.folding = true
			fmt.Fprintf(r.warn, "kaload: warning: more than %d distinct backend names: the summary folds the rest into %s; the results file keeps every name\n",
				r.agg.Options().MaxBackends, report.OtherBackend)
		}
	}
	r.requests.Add(1)
	if res.Failed() {
		r.errors.Add(1)
	}
	if r.live != nil {
		r.live.Add(res.Backend, res.Failed())
	}
	r.backends.Store(int64(r.agg.BackendNames()))
}

// progress draws a live bar on a terminal: elapsed against the limit (with
// -n: requests against -n), requests/s, errors, how many backends have
// answered and the top backends' shares of the last --interval.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

const progressMax = 1000

func startProgress(w io.Writer, c *client.Config, rec *recorder, interval time.Duration) *progress {
	total := int64(progressMax)
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(0),
	}
	if c.Requests > 0 {
		total = c.Requests // the bar counts requests: "1200/5000"
		opts = append(opts, progressbar.OptionShowCount())
	}
	bar := progressbar.NewOptions64(total, opts...)
	p := &progress{done: make(chan struct{})}
	start := time.Now()
	shares := live.NewShares(rec.live, start, interval)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var lastN int64
		lastT := start
		rps := 0.0
		for {
			select {
			case <-p.done:
				_ = bar.Finish()
				return
			case now := <-tick.C:
				n := rec.requests.Load()
				if dt := now.Sub(lastT).Seconds(); dt > 0 {
					rps = float64(n-lastN) / dt
				}
				lastN, lastT = n, now
				elapsed := now.Sub(start)
				frac := 0.0
				if c.Duration > 0 {
					frac = elapsed.Seconds() / c.Duration.Seconds()
				}
				if c.Requests > 0 {
					frac = max(frac, float64(n)/float64(c.Requests))
				}
				limit := "Ctrl-C stops"
				if c.Duration > 0 {
					limit = c.Duration.String()
				}
				bar.Describe(fmt.Sprintf("%s/%s %8.0f req/s %6d errors %3d backends | %s",
					elapsed.Round(time.Second), limit, rps, rec.errors.Load(), rec.backends.Load(), shares.At(now)))
				if c.Requests > 0 {
					_ = bar.Set64(min(n, c.Requests))
				} else {
					_ = bar.Set(int(min(frac, 1) * progressMax))
				}
			}
		}
	}()
	return p
}

// startLiveLines prints a live.Line per interval (--live without a
// terminal): one line each, for logs.
func startLiveLines(w io.Writer, c *client.Config, rec *recorder, interval time.Duration) *progress {
	p := &progress{done: make(chan struct{})}
	limit := "Ctrl-C stops"
	switch {
	case c.Duration > 0:
		limit = c.Duration.String()
	case c.Requests > 0:
		limit = strconv.FormatInt(c.Requests, 10) + " requests"
	}
	start := time.Now()
	tick := time.NewTicker(interval)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer tick.Stop()
		live.Lines(p.done, tick.C, start, interval, limit, rec.live, func(l string) { fmt.Fprintln(w, l) })
	}()
	return p
}

func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.done)
	p.wg.Wait()
}
