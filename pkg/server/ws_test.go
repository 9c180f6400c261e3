package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func dialWS(t *testing.T, ts *testServer, compress bool) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws://"+ts.addr+WebSocketPath, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

// readClose reads until the peer's close frame and returns it.
func readClose(t *testing.T, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("want a close frame, got %v", err)
		}
		return ce
	}
}

func TestWebSocketEcho(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "permessage-deflate"}[compress], func(t *testing.T) {
			ts := start(t, Config{})
			c, resp := dialWS(t, ts, compress)
			if got := resp.Header.Get(DefaultBackendHeader); got != "test-backend" {
				t.Errorf("handshake backend header %q", got)
			}
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); strings.Contains(ext, "permessage-deflate") != compress {
				t.Errorf("extensions %q with compression offered=%v", ext, compress)
			}
			big := bytes.Repeat([]byte("kaload "), 10000)
			for _, m := range []struct {
				typ       int
				send, get []byte
			}{
				{websocket.TextMessage, []byte("hello"), []byte("hello")},
				{websocket.BinaryMessage, []byte{0, 1, 2, 255}, []byte{0, 1, 2, 255}},
				{websocket.TextMessage, []byte(WhoAmI), []byte("test-backend")},
				{websocket.BinaryMessage, []byte(WhoAmI), []byte(WhoAmI)}, // only the text message asks
				{websocket.TextMessage, big, big},
			} {
				if err := c.WriteMessage(m.typ, m.send); err != nil {
					t.Fatal(err)
				}
				typ, got, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if typ != m.typ || !bytes.Equal(got, m.get) {
					t.Errorf("sent %.20q, got type %d %.20q", m.send, typ, got)
				}
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
			if ce := readClose(t, c); ce.Code != websocket.CloseNormalClosure {
				t.Errorf("server answered close with %d", ce.Code)
			}
			waitFor(t, "socket closed", func() bool { return ts.Stats().SocketsOpen == 0 })
			st := ts.Stats()
			if st.SocketMessages != 5 || st.SocketsTotal != 1 || st.SocketsClosed[SocketClient] != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestWebSocketMaxRequests: the Nth message is echoed, then close 1012.
func TestWebSocketMaxRequests(t *testing.T) {
	ts := start(t, Config{MaxRequests: 5, WebSocketCloseGrace: time.Second})
	for sock := range 3 {
		c, _ := dialWS(t, ts, false)
		for i := range 5 {
			if err := c.WriteMessage(websocket.TextMessage, []byte("m")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatalf("socket %d message %d: %v", sock, i+1, err)
			}
		}
		ce := readClose(t, c)
		if ce.Code != websocket.CloseServiceRestart || !strings.Contains(ce.Text, "max requests") {
			t.Errorf("close %d %q, want 1012 naming max requests", ce.Code, ce.Text)
		}
		c.Close()
	}
	waitFor(t, "sockets closed", func() bool { return ts.Stats().SocketsOpen == 0 })
	if st := ts.Stats(); st.SocketsClosed[SocketMaxRequests] != 3 || st.SocketMessages != 15 {
		t.Errorf("stats %+v", st)
	}
}

// TestWebSocketMaxAge: an idle socket past its age gets 1012; a client that
// never answers the close frame loses TCP after the grace.
func TestWebSocketMaxAge(t *testing.T) {
	ts := start(t, Config{MaxConnAge: 100 * time.Millisecond, WebSocketCloseGrace: 200 * time.Millisecond})
	c, _ := dialWS(t, ts, false)
	c.SetCloseHandler(func(int, string) error { return nil }) // a rude client: never answers
	began := time.Now()
	ce := readClose(t, c)
	if ce.Code != websocket.CloseServiceRestart || !strings.Contains(ce.Text, "age") {
		t.Errorf("close %d %q, want 1012 naming the age", ce.Code, ce.Text)
	}
	waitFor(t, "socket closed after the grace", func() bool { return ts.Stats().SocketsOpen == 0 })
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Errorf("TCP closed %v after the age, before the 200ms grace for the client's close", d)
	}
	if st := ts.Stats(); st.SocketsClosed[SocketMaxAge] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestWebSocketShutdown: cancelling Serve closes every socket with 1001,
// spread over the drain delay, and Serve returns nil.
func TestWebSocketShutdown(t *testing.T) {
	ts := start(t, Config{DrainDelay: 300 * time.Millisecond, ShutdownGrace: 5 * time.Second})
	const n = 20
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i], _ = dialWS(t, ts, false)
	}
	began := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- ts.stop(t) }()
	var mu sync.Mutex
	var at []time.Duration
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				t.Errorf("want close 1001, got %v", err)
			}
			mu.Lock()
			at = append(at, time.Since(began))
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var early, late int
	for _, d := range at {
		if d < 150*time.Millisecond {
			early++
		} else {
			late++
		}
	}
	if early == 0 || late == 0 {
		t.Errorf("closes not spread over the drain delay: %v", at)
	}
	if st := ts.Stats(); st.SocketsClosed[SocketShutdown] != n || st.SocketsOpen != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestWebSocketMetrics(t *testing.T) {
	ts := start(t, Config{MaxRequests: 1})
	c, _ := dialWS(t, ts, false)
	c.WriteMessage(websocket.TextMessage, []byte("x"))
	c.ReadMessage()
	readClose(t, c)
	c.Close()
	waitFor(t, "socket closed", func() bool { return ts.Stats().SocketsOpen == 0 })
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	for _, want := range []string{
		"kaload_websockets_open 0",
		"kaload_websockets_total 1",
		"kaload_websocket_messages_total 1",
		`kaload_websockets_closed_total{code="1012",reason="max_requests"} 1`,
		`kaload_websockets_closed_total{code="1001",reason="shutdown"} 0`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
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

// TestPythonWebsocketsClient drives /ws with Python's websockets library, a
// client nobody here wrote: echo, whoami, permessage-deflate, and close 1012
// after --max-requests messages.
func TestPythonWebsocketsClient(t *testing.T) {
	py := pythonWebsockets(t)
	ts := start(t, Config{MaxRequests: 4})
	script := `
import asyncio, sys, websockets
async def main(url):
    async with websockets.connect(url, compression="deflate") as ws:
        print("backend", ws.response_headers["Accept-Request-hostname"])
        print("extensions", ",".join(e.name for e in ws.extensions))
        await ws.send("hello"); print("echo", await ws.recv())
        await ws.send(b"\x00\x01"); print("binary", (await ws.recv()).hex())
        await ws.send("whoami"); print("whoami", await ws.recv())
        await ws.send("four"); print("echo", await ws.recv())
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code, e.rcvd.reason)
asyncio.run(main(sys.argv[1]))
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", script, "ws://"+ts.addr+WebSocketPath).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := "backend test-backend\nextensions permessage-deflate\necho hello\nbinary 0001\nwhoami test-backend\necho four\nclosed 1012 kaload: max requests per connection\n"
	if string(out) != want {
		t.Errorf("python said\n%s\nwant\n%s", out, want)
	}
	waitFor(t, "socket closed", func() bool { return ts.Stats().SocketsOpen == 0 })
	if st := ts.Stats(); st.SocketsClosed[SocketMaxRequests] != 1 {
		t.Errorf("the close handshake did not complete: %+v", st)
	}
}

// TestNodeWsClient drives /ws with Node's ws library, a second client nobody
// here wrote: handshake header, echo, whoami, permessage-deflate and the
// 1012 close after --max-requests messages.
func TestNodeWsClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	env := append(os.Environ(), "NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs:/usr/local/lib/node_modules")
	probe := exec.Command(node, "-e", "require('ws')")
	probe.Env = env
	if probe.Run() != nil {
		t.Skip("node's ws module (node-ws) not installed")
	}
	ts := start(t, Config{MaxRequests: 3})
	script := `
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1], {perMessageDeflate: true});
const out = [];
let n = 0;
ws.on('upgrade', res => out.push('backend ' + res.headers['accept-request-hostname']));
ws.on('open', () => { out.push('extensions ' + ws.extensions); ws.send('hello'); });
ws.on('message', (data, isBinary) => {
  n++;
  out.push('got ' + data.toString());
  if (n === 1) ws.send('whoami');
  if (n === 2) ws.send('three');
});
ws.on('close', (code, reason) => { out.push('closed ' + code + ' ' + reason.toString()); console.log(out.join('\n')); });
ws.on('error', e => { console.log('error ' + e.message); process.exit(1); });
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", script, "ws://"+ts.addr+WebSocketPath)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := "backend test-backend\nextensions permessage-deflate\ngot hello\ngot test-backend\ngot three\nclosed 1012 kaload: max requests per connection\n"
	if string(out) != want {
		t.Errorf("node said\n%s\nwant\n%s", out, want)
	}
	waitFor(t, "socket closed", func() bool { return ts.Stats().SocketsOpen == 0 })
	if st := ts.Stats(); st.SocketsClosed[SocketMaxRequests] != 1 {
		t.Errorf("the close handshake did not complete: %+v", st)
	}
}
