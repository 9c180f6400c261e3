package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kaload/kaload/pkg/server"
)

type serveOptions struct {
	Listen            string
	GRPCListen        string
	StreamInterval    time.Duration
	Hostname          string
	BackendHeader     string
	MaxRequests       int
	MaxRequestsJitter float64
	MaxConnAge        time.Duration
	MaxConnAgeJitter  float64
	MaxConnAgeGrace   time.Duration
	CPU               time.Duration
	Delay             time.Duration
	ResponseSize      int
	Capacity          float64
	H2C               bool
	TLSCert           string
	TLSKey            string
	ReadTimeout       time.Duration
	ShutdownGrace     time.Duration
	DrainDelay        time.Duration
	WSCloseGrace      time.Duration
	LogRequests       bool

	// Sources says where each flag's value came from ("--max-requests",
	// "MAX_REQUEST", ...) so that errors name what the user must fix.
	Sources map[string]string
}

// serveEnvAliases are variables read after KALOAD_<FLAG>, for compatibility
// with the original experiment's manifests and the Kubernetes downward API.
var serveEnvAliases = map[string][]string{
	"max-requests": {"MAX_REQUEST"},
	"hostname":     {"POD_NAME"},
}

func newCmdServe(s *streams, runF func(context.Context, *serveOptions) error) *cobra.Command {
	opts := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an HTTP server that recycles keep-alive connections",
		Long: `Serve HTTP on --listen and end each keep-alive connection after
--max-requests responses or --max-conn-age: the last response carries
"Connection: close" (HTTP/1.1) or the server sends GOAWAY (HTTP/2), so the
client reconnects and a Kubernetes Service may route it to a new pod.

Every response names its backend in the Accept-Request-hostname header (see
--backend-header), the server-wide count in Total-Request and the request's
position on its connection in X-Kaload-Conn-Requests. /healthz, /readyz and
/metrics (Prometheus) are served beside the load endpoint /.

GET /ws upgrades to a WebSocket echo (permessage-deflate when offered); the
handshake response names the backend and a text message "whoami" is
answered with the backend name. For a WebSocket --max-requests counts
messages and --max-conn-age bounds its life: at either the server sends
close 1012 (service restart), waits --ws-close-grace for the client's close
and closes TCP.

Every flag can also be set by a variable KALOAD_<FLAG> (upper snake case,
e.g. KALOAD_MAX_REQUESTS); MAX_REQUEST also sets --max-requests and
POD_NAME sets --hostname. A flag on the command line beats a variable.

--grpc-listen also serves gRPC: the service kaload.v1.Kaload (unary Ping,
server-streaming Stream with a reply every --stream-interval), grpc.health.v1
and server reflection. Answers carry the backend name in the header metadata
accept-request-hostname (see --backend-header) and the RPC's position on its
connection in x-kaload-conn-requests. --max-requests counts RPCs per
connection and ends the connection with grpc-go's graceful GOAWAY;
--max-conn-age and --max-conn-age-grace are grpc-go's MaxConnectionAge and
MaxConnectionAgeGrace (grpc-go's fixed ±10% jitter; --max-conn-age-jitter
applies to HTTP only). --cpu, --delay, --response-size and --capacity shape
RPCs as they shape requests.

On SIGINT or SIGTERM /readyz turns 503 and keep-alive connections close after
their next response; WebSockets close with 1001 (going away), each at a
random moment within --drain-delay so clients do not reconnect at once; new connections are still accepted for --drain-delay
(give Kubernetes time to remove the pod from its endpoints), then in-flight
requests finish and kaload exits 0 within --shutdown-grace. A client that
sends nothing cannot hold the drain: once the listener closed, a request body
that goes one second without a byte is answered 408.

--read-timeout bounds reading one whole request, headers and body (per
stream on HTTP/2): a client that stalls gets 408 Request Timeout and its
HTTP/1 connection closes, so stalled uploads cannot pile up.`,
		Example: `  kaload serve --max-requests 100
  kaload serve --listen 127.0.0.1:9000 --h2c --max-conn-age 30s --cpu 2ms
  MAX_REQUEST=50 POD_NAME=web-1 kaload serve
  kaload serve --tls-cert tls.crt --tls-key tls.key --capacity 200
  kaload serve --max-conn-age 5m --drain-delay 20s   # WebSockets on /ws rebalance every ~5m
  kaload serve --grpc-listen :9090 --max-requests 100 --max-conn-age 5m --max-conn-age-grace 30s
  KALOAD_READ_TIMEOUT=5s kaload serve --drain-delay 5s --shutdown-grace 20s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyServeEnv(cmd.Flags(), opts); err != nil {
				return err
			}
			if err := opts.validate(); err != nil {
				return err
			}
			// server.New checks every range; its errors name fields, mapped
			// here to the flag or variable that set them.
			srv, err := server.New(opts.config(s))
			if err != nil {
				return &exitError{code: exitUsage, err: namedByFlags("serve", err, opts.shown)}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), s, opts, srv)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", ":8080", "address to listen on")
	f.StringVar(&opts.GRPCListen, "grpc-listen", "", "also serve gRPC on this address (empty = no gRPC)")
	f.DurationVar(&opts.StreamInterval, "stream-interval", server.DefaultStreamInterval, "time between the replies of the gRPC Stream RPC")
	f.StringVar(&opts.Hostname, "hostname", "", "backend name to report (default: $POD_NAME, else the OS hostname)")
	f.StringVar(&opts.BackendHeader, "backend-header", server.DefaultBackendHeader, "response header that names the backend")
	f.IntVar(&opts.MaxRequests, "max-requests", 0, "responses per connection before it is closed (0 = unlimited)")
	f.Float64Var(&opts.MaxRequestsJitter, "max-requests-jitter", 0, "spread each connection's limit over N*(1±F), 0..1")
	f.DurationVar(&opts.MaxConnAge, "max-conn-age", 0, "close a connection on its first response after this age (0 = unlimited)")
	f.Float64Var(&opts.MaxConnAgeJitter, "max-conn-age-jitter", 0.1, "spread each connection's age over D*(1±F), 0..1")
	f.DurationVar(&opts.MaxConnAgeGrace, "max-conn-age-grace", 0, "close an expired connection that stays idle this long (0 = never)")
	f.DurationVar(&opts.CPU, "cpu", 0, "CPU time to burn per request")
	f.DurationVar(&opts.Delay, "delay", 0, "time to wait per request")
	f.IntVar(&opts.ResponseSize, "response-size", 0, "exact response body size in bytes (0 = one text line)")
	f.Float64Var(&opts.Capacity, "capacity", 0, "requests/s served; more queue in arrival order (0 = unlimited)")
	f.BoolVar(&opts.H2C, "h2c", false, "also serve HTTP/2 over cleartext (h2c, prior knowledge)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS with HTTP/2")
	f.StringVar(&opts.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.DurationVar(&opts.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "time to read one whole request, headers and body; a client that stalls gets 408")
	f.DurationVar(&opts.ShutdownGrace, "shutdown-grace", 10*time.Second, "time allowed to drain on SIGTERM/SIGINT")
	f.DurationVar(&opts.DrainDelay, "drain-delay", 0, "on SIGTERM keep accepting (readyz 503, every response closes its connection) this long before closing the listener")
	f.DurationVar(&opts.WSCloseGrace, "ws-close-grace", server.DefaultWebSocketCloseGrace, "after sending a WebSocket close frame, wait this long for the client's before closing TCP")
	f.BoolVar(&opts.LogRequests, "log-requests", false, "log every request to stderr as JSON (costs throughput)")
	return cmd
}

// envNames returns the variables that may set flag name, in priority order.
func envNames(name string) []string {
	return append([]string{"KALOAD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}, serveEnvAliases[name]...)
}

// applyServeEnv fills every flag not given on the command line from its
// variables and records where each value came from.
func applyServeEnv(fs *pflag.FlagSet, opts *serveOptions) error {
	opts.Sources = map[string]string{}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Name == "help" {
			return
		}
		if f.Changed {
			opts.Sources[f.Name] = "--" + f.Name
			return
		}
		for _, env := range envNames(f.Name) {
			v, ok := os.LookupEnv(env)
			if !ok || v == "" {
				continue // an empty variable (common in manifests) means unset
			}
			if e := f.Value.Set(strings.TrimSpace(v)); e != nil {
				err = usageErrorf("%s=%q: not %s (it sets --%s)", env, v, valueKind(f.Value.Type()), f.Name)
				return
			}
			opts.Sources[f.Name] = env
			return
		}
		opts.Sources[f.Name] = "--" + f.Name
	})
	return err
}

// valueKind describes a pflag value type for error messages.
func valueKind(typ string) string {
	switch typ {
	case "int":
		return "an integer"
	case "float64":
		return "a number"
	case "duration":
		return "a duration such as 500ms or 30s"
	case "bool":
		return "true or false"
	}
	return "a valid " + typ
}

// shown names a flag as the user set it: the variable (and the flag it
// sets) when the value came from the environment, else the flag.
func (o *serveOptions) shown(flag string) string {
	if src := o.Sources[flag]; src != "" && !strings.HasPrefix(src, "-") {
		return src + " (--" + flag + ")"
	}
	return "--" + flag
}

// validate checks what only the command adds to server.Config: the listen
// address, and no zero for the durations whose zero server.Config reads as
// "the default" (on the command line a zero is a mistake). server.New
// checks every range.
func (o *serveOptions) validate() error {
	if o.Listen == "" {
		return usageErrorf("%s: must not be empty", o.shown("listen"))
	}
	if err := checkListen(o.Listen); err != nil {
		return usageErrorf("%s: %v", o.shown("listen"), err)
	}
	if o.GRPCListen != "" {
		if err := checkListen(o.GRPCListen); err != nil {
			return usageErrorf("%s: %v", o.shown("grpc-listen"), err)
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"read-timeout", o.ReadTimeout},
		{"shutdown-grace", o.ShutdownGrace},
		{"ws-close-grace", o.WSCloseGrace},
		{"stream-interval", o.StreamInterval},
	} {
		if d.v == 0 {
			return usageErrorf("%s: must be positive, got 0s", o.shown(d.flag))
		}
	}
	return nil
}

func (o *serveOptions) config(s *streams) server.Config {
	cfg := server.Config{
		Hostname:            o.Hostname,
		BackendHeader:       o.BackendHeader,
		MaxRequests:         o.MaxRequests,
		MaxRequestsJitter:   o.MaxRequestsJitter,
		MaxConnAge:          o.MaxConnAge,
		MaxConnAgeJitter:    o.MaxConnAgeJitter,
		MaxConnAgeGrace:     o.MaxConnAgeGrace,
		CPU:                 o.CPU,
		Delay:               o.Delay,
		ResponseSize:        o.ResponseSize,
		Capacity:            o.Capacity,
		H2C:                 o.H2C,
		TLSCertFile:         o.TLSCert,
		TLSKeyFile:          o.TLSKey,
		ReadTimeout:         o.ReadTimeout,
		ShutdownGrace:       o.ShutdownGrace,
		DrainDelay:          o.DrainDelay,
		WebSocketCloseGrace: o.WSCloseGrace,
		StreamInterval:      o.StreamInterval,
	}
	if o.LogRequests {
		cfg.Logger = slog.New(slog.NewJSONHandler(s.Err, nil))
	}
	return cfg
}

func runServe(ctx context.Context, s *streams, opts *serveOptions, srv *server.Server) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", opts.Listen)
	if err != nil {
		return listenError(opts.Listen, "--listen", err)
	}
	var gln net.Listener
	if opts.GRPCListen != "" {
		if gln, err = new(net.ListenConfig).Listen(ctx, "tcp", opts.GRPCListen); err != nil {
			ln.Close()
			return listenError(opts.GRPCListen, "--grpc-listen", err)
		}
	}
	fmt.Fprintf(s.Err, "kaload serve: listening on %s (%s) hostname=%s %s\n",
		ln.Addr(), protocolsLabel(opts), srv.Hostname(), limitsLabel(opts))
	defer heapFloor(serveHeapFloor)()
	if gln == nil {
		if err := srv.Serve(ctx, ln); err != nil {
			return err
		}
		fmt.Fprintf(s.Err, "kaload serve: drained, %d requests served\n", srv.Stats().Requests)
		return nil
	}
	fmt.Fprintf(s.Err, "kaload serve: gRPC on %s (kaload.v1.Kaload, grpc.health.v1, reflection)\n", gln.Addr())
	// Both servers drain on the same signal; a failing one stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gerr := make(chan error, 1)
	go func() {
		err := srv.ServeGRPC(ctx, gln)
		if err != nil {
			cancel()
		}
		gerr <- err
	}()
	herr := srv.Serve(ctx, ln)
	cancel()
	if err := errors.Join(herr, <-gerr); err != nil {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(s.Err, "kaload serve: drained, %d requests and RPCs served (%d gRPC calls in all)\n", st.Requests, st.GRPCRPCs)
	return nil
}

func protocolsLabel(o *serveOptions) string {
	switch {
	case o.TLSCert != "" && o.H2C:
		return "https h2+http/1.1, h2c"
	case o.TLSCert != "":
		return "https h2+http/1.1"
	case o.H2C:
		return "http/1.1+h2c"
	}
	return "http/1.1"
}

func limitsLabel(o *serveOptions) string {
	var b strings.Builder
	if o.MaxRequests > 0 {
		fmt.Fprintf(&b, "max-requests=%d", o.MaxRequests)
		if o.MaxRequestsJitter > 0 {
			fmt.Fprintf(&b, "±%g%%", o.MaxRequestsJitter*100)
		}
	} else {
		b.WriteString("max-requests=unlimited")
	}
	if o.MaxConnAge > 0 {
		fmt.Fprintf(&b, " max-conn-age=%v±%g%%", o.MaxConnAge, o.MaxConnAgeJitter*100)
		if o.MaxConnAgeGrace > 0 {
			fmt.Fprintf(&b, " max-conn-age-grace=%v", o.MaxConnAgeGrace)
		}
	}
	for _, kv := range []struct {
		k  string
		v  any
		on bool
	}{
		{"cpu", o.CPU, o.CPU > 0},
		{"delay", o.Delay, o.Delay > 0},
		{"response-size", o.ResponseSize, o.ResponseSize > 0},
		{"capacity", o.Capacity, o.Capacity > 0},
	} {
		if kv.on {
			fmt.Fprintf(&b, " %s=%v", kv.k, kv.v)
		}
	}
	if o.DrainDelay > 0 {
		fmt.Fprintf(&b, " drain-delay=%v", o.DrainDelay)
	}
	fmt.Fprintf(&b, " read-timeout=%v shutdown-grace=%v", o.ReadTimeout, o.ShutdownGrace)
	return b.String()
}

// checkListen refuses a listen address that is wrong whatever the machine:
// no HOST:PORT shape, or a port outside 0..65535 (0 picks a free one).
// Whether the host is local and the port free is for Listen to say.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT or :PORT (e.g. :8080, 127.0.0.1:9000)", addr)
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("port %d in %q is outside 0..65535", n, addr)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q in %q is not a number or a known service name", port, addr)
	}
	return nil
}

// listenError words a failed Listen: a port another process holds is the
// common case, and the runtime error (exit 1) names it.
func listenError(addr, flag string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(addr)
		return fmt.Errorf("listen on %s (%s): port %s is already in use by another process: %w", addr, flag, port, err)
	}
	return fmt.Errorf("listen on %s (%s): %w", addr, flag, err)
}
