package client

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kaload/kaload/pkg/field"
)

// Defaults applied by Run to zero fields of Config.
const (
	DefaultConnections   = 10
	DefaultTimeout       = 30 * time.Second
	DefaultBackendHeader = "Accept-Request-hostname"
	DefaultMethod        = http.MethodGet
	totalRequestHeader   = "Total-Request"
	maxConnections       = 1 << 20 // a socket each; far past any file limit
	maxStreams           = 1000    // Config.Streams
)

// Config describes one run. The zero value of an optional field means its default.
type Config struct {
	URL         string
	Connections int           // persistent connection slots kept busy; default 10
	Duration    time.Duration // 0 = no time limit (then Requests must be > 0)
	Requests    int64         // 0 = no count limit; otherwise exactly this many are sent
	// Rate is the total requests/s; 0 = closed model. In the open model each
	// request has an intended send time and its latency is measured from it, so a
	// stalled server cannot hide behind coordinated omission.
	Rate    float64
	Timeout time.Duration // per request, including a redial; default 30s
	Method  string        // default GET
	Header  http.Header
	Body    []byte
	HTTP2   bool // TLS with ALPN h2, one HTTP/2 connection per slot
	H2C     bool // cleartext HTTP/2 with prior knowledge
	// Insecure skips TLS certificate verification.
	Insecure bool
	// Streams is how many requests (or unary RPCs) each HTTP/2 or gRPC
	// connection carries at once, like h2load's -m; each is still one
	// Result with its own Seq and latency. 0 means 1.
	Streams int
	// MaxRequestsPerConn closes a connection after that many requests
	// (client-side recycling, CloseClientLimit); 0 = never.
	MaxRequestsPerConn int
	// BackendHeader names the response header that identifies the backend;
	// default "Accept-Request-hostname". The remote address is used when absent.
	BackendHeader string
	// Abort, once closed, ends the requests in flight at once instead of
	// letting them finish: each is recorded with Err ErrInterrupted. It also
	// stops the run, like cancelling Run's ctx (which lets them finish).
	// A CLI closes it on a second Ctrl-C.
	Abort <-chan struct{}
	// WebSocket (ws:// and wss:// URLs). Message is every message's payload
	// (text when valid UTF-8, else binary; default DefaultMessage).
	Message     []byte
	Subprotocol string // offered in Sec-WebSocket-Protocol
	Compression bool   // offer permessage-deflate
	// ConnectRate caps socket opens per second over the run, reconnects
	// included (thundering-herd control); 0 = as fast as they come.
	ConnectRate float64
	// ReconnectDelay waits this long (plus up to a tenth and 20ms of
	// jitter) before reopening a socket the server closed.
	ReconnectDelay time.Duration
	// Idle holds the sockets open with pings only, sending no messages;
	// the results are then one KindSocket record per socket.
	Idle         bool
	PingInterval time.Duration // idle pings; default DefaultPingInterval

	// gRPC (a grpc:// or grpcs:// URL). Body is the request message as JSON
	// (empty: the empty message), Header the metadata, BackendHeader the
	// metadata key of the backend name (looked up in the header metadata,
	// then in the trailer).
	//
	// Call names the method, "pkg.Service/Method"; default DefaultCall.
	Call string
	// ProtosetFiles (FileDescriptorSet files, as protoc
	// --descriptor_set_out writes) or ProtoFiles (.proto sources, imports
	// found in ImportPaths) describe the method; without them kaload's own
	// service is known and any other is asked of the server's reflection.
	ProtosetFiles []string
	ProtoFiles    []string
	ImportPaths   []string
	// GRPCStream calls a server-streaming method and keeps one stream open
	// per slot, recording every message received; ended streams reopen.
	GRPCStream bool
	// RootCAs verifies a grpcs:// server; nil means the system's roots.
	RootCAs *x509.CertPool

	// Dial replaces the TCP dialer (tests, in-process labs).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Validate reports every problem in c, each as a *field.Error naming the
// Config field; several are joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	add := func(name, format string, a ...any) { errs = append(errs, field.Errorf(name, format, a...)) }
	if c.URL == "" {
		add("URL", "required")
	} else if _, err := parseTarget(c.URL, c.HTTP2, c.H2C); err != nil {
		errs = append(errs, err)
	}
	if c.Connections < 0 || c.Connections > maxConnections {
		add("Connections", "must be between 1 and %d, got %d", maxConnections, c.Connections)
	}
	if c.Duration < 0 {
		add("Duration", "must not be negative, got %s", c.Duration)
	}
	if c.Requests < 0 {
		add("Requests", "must not be negative, got %d", c.Requests)
	}
	if t, err := parseTarget(c.URL, false, false); err == nil && t.isWebSocket() {
		c.validateWS(add)
	} else {
		for name, set := range map[string]bool{"Idle": c.Idle, "Subprotocol": c.Subprotocol != "", "Message": len(c.Message) > 0, "ConnectRate": c.ConnectRate != 0, "Compression": c.Compression} {
			if set {
				add(name, "needs a ws:// or wss:// URL")
			}
		}
	}
	if c.ConnectRate < 0 || c.ConnectRate != c.ConnectRate || c.ConnectRate > 1e6 {
		add("ConnectRate", "must be between 0 and 1e6 sockets/s, got %v", c.ConnectRate)
	}
	if c.ReconnectDelay < 0 {
		add("ReconnectDelay", "must not be negative, got %s", c.ReconnectDelay)
	}
	if c.PingInterval < 0 {
		add("PingInterval", "must not be negative, got %s", c.PingInterval)
	}
	if c.Duration == 0 && c.Requests == 0 {
		errs = append(errs, &field.Error{Fields: []string{"Duration", "Requests"}, Err: errors.New("one limit is required")})
	}
	if c.Rate < 0 || c.Rate != c.Rate || c.Rate > 1e9 {
		add("Rate", "must be between 0 and 1e9 requests/s, got %v", c.Rate)
	}
	if c.Timeout < 0 {
		add("Timeout", "must not be negative, got %s", c.Timeout)
	}
	if c.Method != "" && !validToken(c.Method) {
		add("Method", "%q is not a valid HTTP method", c.Method)
	}
	for name, vs := range c.Header {
		if t, err := parseTarget(c.URL, c.HTTP2, c.H2C); err == nil && t.grpc {
			break // metadata rules, checked above
		}
		if !validToken(name) {
			add("Header", "%q is not a valid header name", name)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				add("Header", "value of %s contains a line break or NUL", name)
			}
		}
	}
	if c.HTTP2 && c.H2C {
		errs = append(errs, &field.Error{Fields: []string{"HTTP2", "H2C"}, Err: errors.New("choose one")})
	}
	if t, err := parseTarget(c.URL, c.HTTP2, c.H2C); err == nil && t.grpc {
		if c.Method != "" && c.Method != DefaultMethod {
			add("Method", "gRPC calls have no HTTP method; name the method in Call")
		}
		if c.MaxRequestsPerConn > 0 {
			add("MaxRequestsPerConn", "not supported for gRPC")
		}
		if c.GRPCStream && c.Rate > 0 {
			errs = append(errs, &field.Error{Fields: []string{"Rate", "GRPCStream"}, Err: errors.New("a stream's messages come at the server's pace: no rate")})
		}
		if len(c.ProtoFiles) > 0 && len(c.ProtosetFiles) > 0 {
			errs = append(errs, &field.Error{Fields: []string{"ProtoFiles", "ProtosetFiles"}, Err: errors.New("choose one")})
		}
		if c.Call != "" {
			if _, _, err := parseCall(c.Call); err != nil {
				add("Call", "%w", err)
			}
		}
		if _, _, err := grpcMetadata(c.Header); err != nil {
			add("Header", "%w", err)
		}
	} else if err == nil && (c.Call != "" || c.GRPCStream || len(c.ProtoFiles) > 0 || len(c.ProtosetFiles) > 0) {
		errs = append(errs, &field.Error{Fields: []string{"URL", "Call"}, Err: errors.New("a gRPC call needs a grpc:// or grpcs:// URL")})
	}
	if c.Streams < 0 || c.Streams > maxStreams {
		add("Streams", "must be between 1 and %d, got %d", maxStreams, c.Streams)
	} else if c.Streams > 1 {
		t, err := parseTarget(c.URL, c.HTTP2, c.H2C)
		switch {
		case err != nil:
		case !t.grpc && !c.HTTP2 && !c.H2C:
			add("Streams", "needs HTTP/2 or gRPC: HTTP/1.1 and WebSocket carry one request per connection at a time")
		case c.GRPCStream:
			errs = append(errs, &field.Error{Fields: []string{"Streams", "GRPCStream"}, Err: errors.New("one server stream per connection")})
		case c.Rate > 0:
			errs = append(errs, &field.Error{Fields: []string{"Streams", "Rate"}, Err: errors.New("several streams per connection need the closed model (no rate)")})
		}
	}
	if c.MaxRequestsPerConn < 0 {
		add("MaxRequestsPerConn", "must not be negative, got %d", c.MaxRequestsPerConn)
	}
	if c.BackendHeader != "" && !validToken(c.BackendHeader) {
		add("BackendHeader", "%q is not a valid header name", c.BackendHeader)
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	if c.BackendHeader == "" {
		c.BackendHeader = DefaultBackendHeader
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	return c
}

// target is the parsed URL: where to dial and what to put in the request line.
type target struct {
	u       *url.URL
	tls     bool
	grpc    bool   // grpc:// or grpcs://
	addr    string // host:port to dial
	host    string // Host header / :authority
	reqPath string // path?query
}

// parseTarget checks the URL against the protocol flags; its errors are
// *field.Error values.
func parseTarget(raw string, h2, h2c bool) (target, error) {
	var t target
	u, err := url.Parse(raw)
	if err != nil {
		if s := suggestURL(raw); s != "" {
			return t, field.Errorf("URL", "%q has no scheme; did you mean %q?", raw, s)
		}
		return t, field.Errorf("URL", "%w", err)
	}
	if s := suggestURL(raw); s != "" {
		// "localhost:9100/" parses with the scheme "localhost".
		return t, field.Errorf("URL", "%q has no scheme; did you mean %q?", raw, s)
	}
	switch u.Scheme {
	case "http":
		if h2 {
			return t, &field.Error{Fields: []string{"URL", "HTTP2"}, Err: errors.New("HTTP/2 over TLS needs an https:// URL")}
		}
	case "https":
		if h2c {
			return t, &field.Error{Fields: []string{"URL", "H2C"}, Err: errors.New("cleartext HTTP/2 needs an http:// URL")}
		}
		t.tls = true
	case "ws":
	case "wss":
		t.tls = true
	case "grpc", "grpcs":
		if h2 || h2c {
			return t, &field.Error{Fields: []string{"URL", "HTTP2", "H2C"}, Err: errors.New("gRPC is always HTTP/2")}
		}
		t.grpc, t.tls = true, u.Scheme == "grpcs"
		if p := u.EscapedPath(); p != "" && p != "/" || u.RawQuery != "" {
			return t, field.Errorf("URL", "a gRPC URL is grpc://HOST:PORT; the method is named apart (Call)")
		}
	default:
		return t, field.Errorf("URL", "scheme %q is not http, https, ws, wss, grpc or grpcs", u.Scheme)
	}
	if u.Host == "" {
		return t, field.Errorf("URL", "no host")
	}
	if u.User != nil {
		return t, field.Errorf("URL", "user info in the URL is not supported; send an Authorization header")
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if t.tls {
			port = "443"
		}
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return t, field.Errorf("URL", "bad port %q", port)
	}
	t.u = u
	t.addr = net.JoinHostPort(u.Hostname(), port)
	t.host = u.Host
	t.reqPath = u.RequestURI()
	return t, nil
}

// validToken reports whether s is an RFC 9110 token (method or header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// buildRequest renders the HTTP/1.1 request once; every request of a run is these bytes.
func buildRequest(c *Config, t target) []byte {
	var b strings.Builder
	b.WriteString(c.Method)
	b.WriteByte(' ')
	b.WriteString(t.reqPath)
	b.WriteString(" HTTP/1.1\r\n")
	host := t.host
	if h := c.Header.Get("Host"); h != "" {
		host = h
	}
	b.WriteString("Host: " + host + "\r\n")
	if c.Header.Get("User-Agent") == "" {
		b.WriteString("User-Agent: kaload\r\n")
	}
	for name, vs := range c.Header {
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Content-Length", "Transfer-Encoding":
			continue // the engine owns framing and Host
		}
		for _, v := range vs {
			b.WriteString(name + ": " + v + "\r\n")
		}
	}
	if len(c.Body) > 0 || c.Method == http.MethodPost || c.Method == http.MethodPut || c.Method == http.MethodPatch {
		b.WriteString("Content-Length: " + strconv.Itoa(len(c.Body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(c.Body)
	return []byte(b.String())
}

// suggestURL returns the http:// URL someone who wrote raw most likely
// meant ("127.0.0.1:9100" -> "http://127.0.0.1:9100/"), or "" when raw has a
// scheme or does not start with a plain HOST or HOST:PORT.
func suggestURL(raw string) string {
	if raw == "" || strings.Contains(raw, "://") {
		return ""
	}
	hostport, rest, _ := strings.Cut(raw, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
		if strings.Contains(hostport, ":") {
			return ""
		}
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return ""
	}
	switch host {
	case "", "http", "https", "ws", "wss", "grpc", "grpcs":
		return "" // "http//host": a typo in the scheme, not a host named http
	}
	if strings.ContainsAny(host, "@?#% ") {
		return ""
	}
	u, err := url.Parse("http://" + hostport + "/" + rest)
	if err != nil || u.Hostname() != strings.Trim(host, "[]") {
		return ""
	}
	return u.String()
}
