package main

import (
	"net"
	"strings"
	"testing"
	"time"
)

// Each command line a user mistypes gets its exit code and a message that
// says what is wrong and what to do, not the parser's words.
func TestMessages(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.Addr().String())

	for _, tc := range []struct {
		args    []string
		code    int
		want    []string // in stderr, or in stdout for exit 0
		notWant []string
	}{
		{[]string{"hammer", "--url", "127.0.0.1:9100", "-n", "1"}, exitUsage,
			[]string{`--url: "127.0.0.1:9100" has no scheme; did you mean "http://127.0.0.1:9100/"?`}, []string{"first path segment"}},
		{[]string{"hammer", "--url", "localhost:9100/", "-n", "1"}, exitUsage,
			[]string{`did you mean "http://localhost:9100/"?`}, []string{`scheme "localhost"`}},
		{[]string{"report"}, exitUsage,
			[]string{"no results file given", "Usage: kaload report FILE... [flags]", "See 'kaload report --help'."}, []string{"requires at least"}},
		{[]string{"hammer", "--url", "http://127.0.0.1:1/", "extra"}, exitUsage,
			[]string{`unexpected argument "extra": kaload hammer takes flags only`, "Usage: kaload hammer --url URL [flags]"}, []string{"unknown command"}},
		{[]string{"serve", "a", "b"}, exitUsage, []string{`unexpected arguments "a" "b"`}, []string{"unknown command"}},
		{[]string{"lab", "extra"}, exitUsage, []string{`unexpected argument "extra": kaload lab takes flags only`}, nil},
		{[]string{"version", "extra"}, exitUsage, []string{`unexpected argument "extra"`}, nil},
		{[]string{"lab", "--max-requests", "abc"}, exitUsage,
			[]string{`"abc" is not a whole number (want a comma-separated list such as 0,5,100)`}, []string{"strconv", "Atoi"}},
		{[]string{"lab", "--max-conn-age", "2s,5"}, exitUsage, []string{`"5" is not a duration with a unit`}, []string{"time: "}},
		{[]string{"lab", "--help"}, exitOK, []string{"--max-conn-age D,D...", "--max-requests N,N...", "(default 0,5)"}, []string{"durationSlice", "default []", "intSlice"}},
		{[]string{"serve", "--listen", "127.0.0.1:99999"}, exitUsage, []string{`--listen: port 99999 in "127.0.0.1:99999" is outside 0..65535`}, nil},
		{[]string{"serve", "--listen", "8080"}, exitUsage, []string{`--listen: "8080" is not HOST:PORT or :PORT`}, nil},
		{[]string{"serve", "--grpc-listen", "127.0.0.1:70000"}, exitUsage, []string{"--grpc-listen: port 70000"}, nil},
		{[]string{"serve", "--listen", busy.Addr().String()}, exitRuntime,
			[]string{"port " + busyPort + " is already in use by another process"}, nil},
		{[]string{"report", "--help"}, exitOK, []string{"csv (the timeline)"}, nil},
		{[]string{"hammer", "--help"}, exitOK, []string{"csv (the timeline)"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runReportCmd(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errs)
			}
			text := errs
			if code == exitOK {
				text = out
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(text, w) {
					t.Errorf("output has %q:\n%s", w, text)
				}
			}
		})
	}
}

// kaload --version and kaload version print the same line.
func TestVersionFlagMatchesCommand(t *testing.T) {
	_, flag, _ := runReportCmd(t, "--version")
	_, cmd, _ := runReportCmd(t, "version")
	if flag != cmd || !strings.HasPrefix(cmd, "kaload ") || !strings.HasSuffix(cmd, ")\n") {
		t.Errorf("--version printed %q, version printed %q", flag, cmd)
	}
}

// The list flags' parsers accept what they print and never panic.
func FuzzListFlags(f *testing.F) {
	for _, s := range []string{"0,5", " 1 , 2", "abc", "", ",", "2s,30s", "1h2m3.5s", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var ns []int
		il := newIntList(&ns, nil)
		if il.Set(s) == nil {
			var again []int
			if err := newIntList(&again, nil).Set(il.String()); err != nil || len(again) != len(ns) {
				t.Fatalf("%q -> %q does not read back: %v", s, il.String(), err)
			}
		}
		var ds []time.Duration
		dl := newDurationList(&ds, nil)
		if dl.Set(s) == nil {
			var again []time.Duration
			if err := newDurationList(&again, nil).Set(dl.String()); err != nil || len(again) != len(ds) {
				t.Fatalf("%q -> %q does not read back: %v", s, dl.String(), err)
			}
		}
	})
}
