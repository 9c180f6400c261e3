package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
	"github.com/kaload/kaload/pkg/server"
)

// TestHammerWebSocketEndToEnd: the proof through the command line:
// 1000 messages over 10 sockets, server limit 5: exactly 200 sockets, each
// closed with 1012, no failed message, all in the summary and the file.
func TestHammerWebSocketEndToEnd(t *testing.T) {
	s := servertest.Start(t, server.Config{Hostname: "pod-a", MaxRequests: 5})
	file := filepath.Join(t.TempDir(), "ws.kld")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", "ws://"+s.Addr+"/ws", "-n", "1000", "-c", "10",
		"--message-size", "100", "-o", file, "--format", "json", "--expect", "errors==0", "--expect", "sockets(pod-a)==0")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\n%s", code, stderr, stdout)
	}
	sum := report.Report{Summary: &report.Summary{}}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("json summary: %v\n%s", err, stdout)
	}
	if sum.Requests != 1000 || sum.Errors != 0 || sum.Connections != 200 {
		t.Errorf("requests %d errors %d connections %d, want 1000 0 200", sum.Requests, sum.Errors, sum.Connections)
	}
	if sk := sum.Sockets; sk == nil || sk.Opened != 200 || sk.Closed["1012"] != 200 || sk.HeldAtEnd != 0 {
		t.Errorf("sockets %+v", sum.Sockets)
	}
	for _, e := range sum.Expectations {
		if !e.OK {
			t.Errorf("expectation %+v", e)
		}
	}
	r, err := results.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var res client.Result
	msgs, socks := 0, 0
	for {
		err := r.Read(&res)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.Kind == client.KindSocket {
			socks++
			if res.CloseCode != 1012 {
				t.Errorf("socket record %+v", res)
			}
		} else {
			msgs++
			if res.Bytes != 100 {
				t.Errorf("message record %+v", res)
			}
		}
	}
	if msgs != 1000 || socks != 200 {
		t.Errorf("file holds %d messages and %d sockets, want 1000 and 200", msgs, socks)
	}
}

func TestMessageSource(t *testing.T) {
	files := map[string][]byte{"m.bin": {0xff, 1}, "empty": nil}
	read := func(name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return b, nil
	}
	for _, tt := range []struct {
		spec    string
		size    int
		want    string
		wantErr string
	}{
		{"hello", 0, "hello", ""},
		{"ab", 5, "ababa", ""},
		{"", 9, "kaload ka", ""},
		{"@m.bin", 0, "\xff\x01", ""},
		{"@m.bin", 3, "\xff\x01\xff", ""},
		{"@", 0, "", "no file name after @"},
		{"@nope", 0, "", "file does not exist"},
		{"@empty", 0, "", "the file is empty"},
		{"x", -1, "", "--message-size -1: must be within"},
		{"x", maxMessageSize + 1, "", "must be within"},
	} {
		got, err := messageSource(tt.spec, tt.size, read)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q/%d: err %v, want %q", tt.spec, tt.size, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%q/%d: %q %v, want %q", tt.spec, tt.size, got, err, tt.want)
		}
	}
}

// FuzzMessageSource: any spec and size either fails with a message naming a
// flag or yields exactly the size asked for (or the text itself).
func FuzzMessageSource(f *testing.F) {
	f.Add("hello", 0)
	f.Add("@file", 10)
	f.Add("", 3)
	f.Add("ü", 4)
	f.Fuzz(func(t *testing.T, spec string, size int) {
		if size > 1<<16 {
			size %= 1 << 16 // keep the fuzzer's memory small; the bound is tested above
		}
		read := func(string) ([]byte, error) { return []byte("data"), errors.New("unreadable") }
		got, err := messageSource(spec, size, read)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--message") {
				t.Fatalf("error %q names no flag", err)
			}
			return
		}
		switch {
		case size > 0 && len(got) != size:
			t.Fatalf("%d bytes for --message-size %d", len(got), size)
		case size == 0 && !bytes.Equal(got, []byte(spec)):
			t.Fatalf("%q for --message %q", got, spec)
		}
	})
}
