package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/server"
)

// split separates message results from socket records.
func split(res []Result) (msgs, socks []Result) {
	for _, r := range res {
		if r.Kind == KindSocket {
			socks = append(socks, r)
		} else {
			msgs = append(msgs, r)
		}
	}
	return msgs, socks
}

// The proof: the server closes every socket after 5 messages with
// 1012, so 1000 messages over 10 sockets need exactly 200 sockets and none
// fails.
func TestWebSocketRecyclingRealServer(t *testing.T) {
	s := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 5})
	var c collector
	st, err := Run(context.Background(), Config{URL: "ws://" + s.Addr + "/ws", Connections: 10, Requests: 1000, Timeout: 10 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	msgs, socks := split(c.res)
	checkResults(t, st, msgs, 1000)
	if st.Errors != 0 {
		t.Fatalf("%d errors, first: %q", st.Errors, firstErr(msgs))
	}
	if st.Connections != 200 || len(socks) != 200 {
		t.Errorf("opened %d sockets (%d socket records), want 200; stats %+v", st.Connections, len(socks), st)
	}
	closes := 0
	for _, r := range msgs {
		if r.Backend != "pod-a" || r.Status != http.StatusSwitchingProtocols || r.Bytes != int64(len(DefaultMessage)) {
			t.Fatalf("result %+v", r)
		}
		if r.Close != CloseNone {
			closes++
			if r.Close != CloseServer || r.CloseCode != 1012 || r.ConnReq != 5 {
				t.Errorf("socket %d ended after message %d with %v %d, want server-close 1012 after 5", r.Conn, r.ConnReq, r.Close, r.CloseCode)
			}
		}
	}
	if closes != 200 {
		t.Errorf("%d messages carry a close, want 200", closes)
	}
	for _, r := range socks {
		if r.Close != CloseServer || r.CloseCode != 1012 || r.ConnReq != 5 || r.Backend != "pod-a" || r.Failed() {
			t.Errorf("socket record %+v", r)
		}
	}
	if got := s.Server.Stats().SocketsTotal; got != 200 {
		t.Errorf("server upgraded %d sockets", got)
	}
}

// switchDialer dials one address until told another.
type switchDialer struct{ addr atomic.Value }

func (d *switchDialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, network, d.addr.Load().(string))
}

// TestWebSocketShutdownReconnect: a server told to stop closes every socket
// with 1001; the hammer reconnects (to a second server, as a Service would
// route it) and loses no message.
func TestWebSocketShutdownReconnect(t *testing.T) {
	a := servertest.Start(t, server.Config{Hostname: "pod-a", DrainDelay: 100 * time.Millisecond})
	b := servertest.Start(t, server.Config{Hostname: "pod-b"})
	sd := &switchDialer{}
	sd.addr.Store(a.Addr)
	var c collector
	var n atomic.Int64
	sink := SinkFunc(func(r *Result) {
		c.Record(r)
		if r.Kind == KindRequest && n.Add(1) == 300 {
			sd.addr.Store(b.Addr)
			go a.Stop()
		}
	})
	// At 5000/s the run lasts 0.6s: the drain (0.1s) ends well before it.
	st, err := Run(context.Background(), Config{URL: "ws://pod/ws", Connections: 10, Requests: 3000, Rate: 5000, Timeout: 10 * time.Second, Dial: sd.dial}, sink)
	if err != nil {
		t.Fatal(err)
	}
	msgs, socks := split(c.res)
	checkResults(t, st, msgs, 3000)
	if st.Errors != 0 {
		t.Fatalf("%d errors, first: %q", st.Errors, firstErr(msgs))
	}
	per := map[string]int{}
	for _, r := range msgs {
		per[r.Backend]++
	}
	if per["pod-a"] < 300 || per["pod-b"] == 0 || per["pod-a"]+per["pod-b"] != 3000 {
		t.Errorf("messages per backend %v", per)
	}
	goingAway := 0
	for _, r := range socks {
		if r.Backend == "pod-a" {
			if r.Close != CloseServer || r.CloseCode != 1001 {
				t.Errorf("pod-a socket ended with %v %d, want server-close 1001: %+v", r.Close, r.CloseCode, r)
			}
			goingAway++
		}
	}
	if goingAway < 10 {
		t.Errorf("%d pod-a sockets closed with 1001, want at least 10", goingAway)
	}
}

// TestWebSocketIdle holds sockets with pings only; the server's age limit
// recycles them and each socket yields one record.
func TestWebSocketIdle(t *testing.T) {
	s := servertest.Start(t, server.Config{Hostname: "pod-a", MaxConnAge: 300 * time.Millisecond})
	var c collector
	st, err := Run(context.Background(), Config{URL: "ws://" + s.Addr + "/ws", Connections: 4, Duration: time.Second, Idle: true, PingInterval: 50 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	msgs, socks := split(c.res)
	if len(msgs) != 0 || st.Requests != 0 || st.Errors != 0 {
		t.Fatalf("idle run sent messages: %d results, stats %+v", len(msgs), st)
	}
	var recycled, open int
	for _, r := range socks {
		switch {
		case r.Close == CloseServer && r.CloseCode == 1012:
			recycled++
		case r.Close == CloseNone:
			open++
		default:
			t.Errorf("socket record %+v", r)
		}
	}
	if open != 4 || recycled < 4 || int64(len(socks)) != st.Connections {
		t.Errorf("%d recycled, %d open at the end, %d records, stats %+v", recycled, open, len(socks), st)
	}
	if s.Server.Stats().SocketsOpen != 0 {
		waitFor(t, "server sockets closed", func() bool { return s.Server.Stats().SocketsOpen == 0 })
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestWebSocketHandshakeFailure: a refused upgrade is an error carrying the HTTP status.
func TestWebSocketHandshakeFailure(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	var c collector
	st, err := Run(context.Background(), Config{URL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", Connections: 2, Requests: 6}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 6)
	for _, r := range c.res {
		if r.Status != 503 || !strings.Contains(r.Err, "HTTP 503") || !r.Failed() {
			t.Errorf("result %+v", r)
		}
	}
	if st.Errors != 6 || st.DialErrors != 6 {
		t.Errorf("stats %+v", st)
	}
}

// TestWebSocketOpenModel sends at a fixed total rate with latency from the
// intended send time, and paces socket opens.
func TestWebSocketOpenModel(t *testing.T) {
	s := servertest.Start(t, server.Config{Hostname: "pod-a"})
	var c collector
	st, err := Run(context.Background(), Config{URL: "ws://" + s.Addr + "/ws", Connections: 4, Rate: 200, Requests: 100, ConnectRate: 20, Message: []byte{0xff, 0}}, &c)
	if err != nil {
		t.Fatal(err)
	}
	msgs, socks := split(c.res)
	checkResults(t, st, msgs, 100)
	if st.Errors != 0 || len(socks) != 4 {
		t.Fatalf("stats %+v, %d sockets", st, len(socks))
	}
	for _, r := range msgs {
		if want := time.Duration(r.Seq) * 5 * time.Millisecond; r.Start != want {
			t.Fatalf("message %d intended at %v, want %v", r.Seq, r.Start, want)
		}
		if r.Bytes != 2 {
			t.Fatalf("binary echo of %d bytes", r.Bytes)
		}
	}
	// Four opens at 20/s: the last no earlier than 150ms into the run.
	var last time.Duration
	for _, r := range socks {
		last = max(last, r.Start)
	}
	if last < 140*time.Millisecond {
		t.Errorf("the 4th socket opened at %v, before --connect-rate allowed", last)
	}
}

func TestWebSocketValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "ws://h/ws", Requests: 1, Header: http.Header{"Sec-Websocket-Key": {"x"}}}, "Header: Sec-Websocket-Key is set by the WebSocket handshake"},
		{Config{URL: "ws://h/ws", Requests: 1, Idle: true}, "Idle: needs a duration"},
		{Config{URL: "ws://h/ws", Duration: time.Second, Idle: true, Rate: 5}, "Idle: sends no messages, so the rate must be 0"},
		{Config{URL: "http://h/", Requests: 1, Idle: true}, "Idle: needs a ws:// or wss:// URL"},
		{Config{URL: "ws://h/ws", Requests: 1, H2C: true}, "H2C: WebSocket runs over HTTP/1.1"},
		{Config{URL: "ftp://h/", Requests: 1}, `scheme "ftp" is not http, https, ws, wss, grpc or grpcs`},
	} {
		err := tt.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestPythonWebsocketsServer drives a WebSocket server nobody here wrote
// (Python's websockets library) that closes each socket after N messages
// with 1012 and names no backend: every message is answered, none fails.
func TestPythonWebsocketsServer(t *testing.T) {
	py := pythonWebsockets(t)
	script := `
import asyncio, sys, websockets
N = int(sys.argv[1])
async def echo(ws, path=None):
    n = 0
    async for m in ws:
        await ws.send(m)
        n += 1
        if n == N:
            await ws.close(1012, "python: enough")
            return
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as srv:
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", script, "6")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("python server: %v", err)
	}
	url := fmt.Sprintf("ws://127.0.0.1:%s/", strings.TrimSpace(line))
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 4, Requests: 400, Timeout: 10 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	msgs, socks := split(c.res)
	checkResults(t, st, msgs, 400)
	if st.Errors != 0 {
		t.Fatalf("%d errors, first %q", st.Errors, firstErr(msgs))
	}
	// The whoami question is echoed, so the backend is the peer address;
	// it took one of each socket's 6 messages, leaving 5 for the load.
	for _, r := range socks {
		if !strings.HasPrefix(r.Backend, "127.0.0.1:") {
			t.Errorf("backend %q, want the peer address", r.Backend)
		}
		if r.Close == CloseServer && (r.CloseCode != 1012 || r.ConnReq != 5) {
			t.Errorf("socket record %+v, want 1012 after 5 load messages", r)
		}
	}
	if st.Connections != 80 {
		t.Errorf("%d sockets, want 80 (400 messages / 5)", st.Connections)
	}
}

// pythonWebsockets finds the interpreter that can import the websockets
// library (Debian's python3-websockets installs it for /usr/bin/python3 only).
func pythonWebsockets(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		p, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import websockets").Run() == nil {
			return p
		}
	}
	t.Skip("python3 with the websockets library (python3-websockets) not installed")
	return ""
}

// TestWebSocketTLSHeadersWhoami: wss:// with --insecure, handshake headers
// and the subprotocol reach the server; a server that names itself under
// another header is asked whoami.
func TestWebSocketTLSHeadersWhoami(t *testing.T) {
	srv, err := server.New(server.Config{Hostname: "pod-tls", BackendHeader: "X-Other"})
	if err != nil {
		t.Fatal(err)
	}
	var gotAuth, gotProto atomic.Value
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		gotProto.Store(r.Header.Get("Sec-Websocket-Protocol"))
		srv.Handler().ServeHTTP(w, r)
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificates below
	ts.StartTLS()
	defer ts.Close()
	url := "wss" + strings.TrimPrefix(ts.URL, "https") + "/ws"
	cfg := Config{URL: url, Connections: 2, Requests: 10, Insecure: true, Subprotocol: "kaload.v1",
		Header: http.Header{"Authorization": {"Bearer t0ken"}}}
	var c collector
	st, err := Run(context.Background(), cfg, &c)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := split(c.res)
	checkResults(t, st, msgs, 10)
	if st.Errors != 0 {
		t.Fatalf("%d errors: %q", st.Errors, firstErr(msgs))
	}
	for _, r := range msgs {
		if r.Backend != "pod-tls" {
			t.Fatalf("backend %q, want the whoami answer pod-tls", r.Backend)
		}
	}
	if gotAuth.Load() != "Bearer t0ken" || gotProto.Load() != "kaload.v1" {
		t.Errorf("server saw Authorization %q, subprotocol %q", gotAuth.Load(), gotProto.Load())
	}
	// Without --insecure the test certificate is refused: a handshake error.
	cfg.Insecure = false
	c = collector{}
	st, err = Run(context.Background(), cfg, &c)
	if err != nil {
		t.Fatal(err)
	}
	if st.Errors != 10 || !strings.Contains(firstErr(c.res), "certificate") {
		t.Errorf("without --insecure: %d errors, first %q", st.Errors, firstErr(c.res))
	}
	waitFor(t, "sockets closed", func() bool { return srv.Stats().SocketsOpen == 0 })
}

// TestWebSocketClientLimit: --max-requests-per-conn closes each socket
// from the client side (1000) after N messages and opens another.
func TestWebSocketClientLimit(t *testing.T) {
	s := servertest.Start(t, server.Config{Hostname: "pod-a"})
	var c collector
	st, err := Run(context.Background(), Config{URL: "ws://" + s.Addr + "/ws", Connections: 2, Requests: 40, MaxRequestsPerConn: 4}, &c)
	if err != nil {
		t.Fatal(err)
	}
	msgs, socks := split(c.res)
	checkResults(t, st, msgs, 40)
	if st.Errors != 0 || st.Connections != 10 || len(socks) != 10 || st.Closes[CloseClientLimit] != 10 {
		t.Fatalf("stats %+v, %d socket records", st, len(socks))
	}
	for _, r := range msgs {
		if (r.ConnReq == 4) != (r.Close == CloseClientLimit && r.CloseCode == 1000) {
			t.Errorf("message %d on its socket: close %v %d", r.ConnReq, r.Close, r.CloseCode)
		}
	}
	waitFor(t, "server sockets closed", func() bool { return s.Server.Stats().SocketsClosed[server.SocketClient] == 10 })
}

// TestWebSocketReconnectDelay: a socket the server closed is reopened only
// after --reconnect-delay, and the wait is no error.
func TestWebSocketReconnectDelay(t *testing.T) {
	s := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 1})
	var c collector
	st, err := Run(context.Background(), Config{URL: "ws://" + s.Addr + "/ws", Connections: 1, Requests: 4, ReconnectDelay: 150 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	msgs, socks := split(c.res)
	checkResults(t, st, msgs, 4)
	if st.Errors != 0 || len(socks) != 4 {
		t.Fatalf("stats %+v, %d sockets", st, len(socks))
	}
	for i := 1; i < len(socks); i++ {
		if gap := socks[i].Start - (socks[i-1].Start + socks[i-1].Latency); gap < 150*time.Millisecond {
			t.Errorf("socket %d opened %v after the previous one closed, before the 150ms reconnect delay", i+1, gap)
		}
	}
}
