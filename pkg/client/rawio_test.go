package client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// A body larger than the socket buffers cannot go out in one raw write: the
// request must finish on the ordinary path, intact.
func TestLargeBodyFallsBack(t *testing.T) { bothEngines(t, testLargeBodyFallsBack) }

func testLargeBodyFallsBack(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond) // let the client's socket buffer fill
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Accept-Request-hostname", strconv.FormatInt(n, 10))
	}))
	defer ts.Close()
	body := make([]byte, 16<<20)
	for _, raw := range []bool{true, false} {
		func() {
			defer func(old bool) { rawIO = old }(rawIO)
			rawIO = raw
			var c collector
			st, err := Run(context.Background(), Config{URL: ts.URL, Connections: 1, Requests: 3, Method: "POST", Body: body, Timeout: 20 * time.Second}, &c)
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, st, c.res, 3)
			for _, r := range c.res {
				if r.Failed() || r.Backend != strconv.Itoa(len(body)) || r.Conn != 1 {
					t.Fatalf("rawIO=%v: %+v", raw, r)
				}
			}
		}()
	}
}

// A server that sends more than it was asked for leaves bytes buffered; the
// next request must still be written before the engine reads.
func TestUnsolicitedBytesNoHang(t *testing.T) { bothEngines(t, testUnsolicitedBytesNoHang) }

func testUnsolicitedBytesNoHang(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for readRequest(br) == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
		}
	})
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Connections: 1, Requests: 6, Timeout: 5 * time.Second}, &c)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, st, c.res, 6)
	if st.Errors != 0 || st.Connections != 1 {
		t.Fatalf("stats %+v, %s", st, firstErr(c.res))
	}
}
