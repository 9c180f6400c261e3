package server

import (
	"bytes"
	"net/http"
	"testing"
)

// FuzzWriteBody: whatever the line and size, the body is exactly size bytes
// (or the line when size is 0), starts with the line's text and, when
// padded, ends with a newline.
func FuzzWriteBody(f *testing.F) {
	f.Add([]byte("backend=a request=1 conn_request=1\n"), 0)
	f.Add([]byte("backend=a request=1 conn_request=1\n"), 1)
	f.Add([]byte("x\n"), 2)
	f.Add([]byte("backend=a\n"), 70000)
	f.Fuzz(func(t *testing.T, line []byte, size int) {
		if len(line) == 0 || line[len(line)-1] != '\n' || size < 0 || size > 1<<20 {
			t.Skip()
		}
		orig := bytes.Clone(line)
		w := &recorder{header: http.Header{}}
		writeBody(w, line[:len(line):len(line)], size)
		body := w.body.String()
		want := size
		if size == 0 {
			want = len(orig)
		}
		if len(body) != want {
			t.Fatalf("body %d bytes, want %d", len(body), want)
		}
		prefix := orig[:len(orig)-1]
		if n := min(len(prefix), len(body)); body[:n] != string(prefix[:n]) {
			t.Fatalf("body does not start with the line")
		}
		if size > len(orig) && body[len(body)-1] != '\n' {
			t.Fatalf("padded body does not end with a newline")
		}
	})
}
