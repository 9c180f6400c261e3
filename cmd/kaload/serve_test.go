package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// parseServe runs `kaload serve ARGS` through cobra with runF capturing the
// options, so flag and environment handling are tested apart from serving.
func parseServe(t *testing.T, args ...string) (*serveOptions, error) {
	t.Helper()
	var got *serveOptions
	var out, errb bytes.Buffer
	cmd := newCmdServe(&streams{Out: &out, Err: &errb}, func(_ context.Context, o *serveOptions) error {
		got = o
		return nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return got, err
}

// serveEnvVars lists every variable serve reads, so each case starts clean.
var serveEnvVars = []string{
	"KALOAD_LISTEN", "KALOAD_MAX_REQUESTS", "MAX_REQUEST", "KALOAD_HOSTNAME", "POD_NAME",
	"KALOAD_MAX_REQUESTS_JITTER", "KALOAD_MAX_CONN_AGE", "KALOAD_MAX_CONN_AGE_JITTER",
	"KALOAD_MAX_CONN_AGE_GRACE", "KALOAD_BACKEND_HEADER", "KALOAD_CPU", "KALOAD_DELAY",
	"KALOAD_RESPONSE_SIZE", "KALOAD_CAPACITY", "KALOAD_H2C", "KALOAD_TLS_CERT", "KALOAD_TLS_KEY",
	"KALOAD_SHUTDOWN_GRACE", "KALOAD_LOG_REQUESTS", "KALOAD_DRAIN_DELAY",
}

func TestServeFlagsAndEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*serveOptions) string // "" when right
	}{
		{"defaults", nil, nil, func(o *serveOptions) string {
			if o.Listen != ":8080" || o.MaxRequests != 0 || o.MaxConnAgeJitter != 0.1 || o.ShutdownGrace != 10*time.Second ||
				o.BackendHeader != "Accept-Request-hostname" || o.H2C || o.LogRequests || o.Hostname != "" {
				return fmt.Sprintf("%+v", *o)
			}
			return ""
		}},
		{"MAX_REQUEST", map[string]string{"MAX_REQUEST": "7"}, nil, maxRequests(7, "MAX_REQUEST")},
		{"KALOAD_MAX_REQUESTS beats MAX_REQUEST", map[string]string{"MAX_REQUEST": "7", "KALOAD_MAX_REQUESTS": "9"}, nil, maxRequests(9, "KALOAD_MAX_REQUESTS")},
		{"flag beats both", map[string]string{"MAX_REQUEST": "7", "KALOAD_MAX_REQUESTS": "9"}, []string{"--max-requests", "3"}, maxRequests(3, "--max-requests")},
		{"flag zero beats env", map[string]string{"MAX_REQUEST": "7"}, []string{"--max-requests=0"}, maxRequests(0, "--max-requests")},
		{"empty numeric env ignored", map[string]string{"MAX_REQUEST": ""}, nil, maxRequests(0, "--max-requests")},
		{"POD_NAME", map[string]string{"POD_NAME": "web-1"}, nil, hostname("web-1")},
		{"empty KALOAD_HOSTNAME falls through to POD_NAME", map[string]string{"POD_NAME": "web-1", "KALOAD_HOSTNAME": ""}, nil, hostname("web-1")},
		{"empty KALOAD_LISTEN keeps the default", map[string]string{"KALOAD_LISTEN": ""}, nil, func(o *serveOptions) string {
			if o.Listen != ":8080" {
				return "listen " + o.Listen
			}
			return ""
		}},
		{"KALOAD_HOSTNAME beats POD_NAME", map[string]string{"POD_NAME": "web-1", "KALOAD_HOSTNAME": "h"}, nil, hostname("h")},
		{"--hostname beats POD_NAME", map[string]string{"POD_NAME": "web-1"}, []string{"--hostname", "cli"}, hostname("cli")},
		{"every KALOAD_ variable", map[string]string{
			"KALOAD_LISTEN": "127.0.0.1:9", "KALOAD_MAX_REQUESTS_JITTER": "0.2", "KALOAD_MAX_CONN_AGE": "30s",
			"KALOAD_MAX_CONN_AGE_JITTER": "0.3", "KALOAD_MAX_CONN_AGE_GRACE": "5s", "KALOAD_BACKEND_HEADER": "X-Pod",
			"KALOAD_CPU": "2ms", "KALOAD_DELAY": "3ms", "KALOAD_RESPONSE_SIZE": "100", "KALOAD_CAPACITY": "50.5",
			"KALOAD_H2C": "true", "KALOAD_SHUTDOWN_GRACE": "20s", "KALOAD_LOG_REQUESTS": "1", "KALOAD_DRAIN_DELAY": "4s",
			"KALOAD_WS_CLOSE_GRACE": "3s", "KALOAD_GRPC_LISTEN": ":9090", "KALOAD_STREAM_INTERVAL": "2s",
			"KALOAD_READ_TIMEOUT": "7s",
		}, nil, func(o *serveOptions) string {
			want := serveOptions{Listen: "127.0.0.1:9", MaxRequestsJitter: 0.2, MaxConnAge: 30 * time.Second,
				MaxConnAgeJitter: 0.3, MaxConnAgeGrace: 5 * time.Second, BackendHeader: "X-Pod", CPU: 2 * time.Millisecond,
				Delay: 3 * time.Millisecond, ResponseSize: 100, Capacity: 50.5, H2C: true, ReadTimeout: 7 * time.Second, ShutdownGrace: 20 * time.Second, DrainDelay: 4 * time.Second, WSCloseGrace: 3 * time.Second, LogRequests: true,
				GRPCListen: ":9090", StreamInterval: 2 * time.Second}
			got := *o
			got.Sources = nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				return fmt.Sprintf("got %+v\nwant %+v", got, want)
			}
			return ""
		}},
		{"flags", nil, []string{"--listen", "127.0.0.1:0", "--max-requests-jitter", "0.5", "--h2c", "--delay", "1s"},
			func(o *serveOptions) string {
				if o.Listen != "127.0.0.1:0" || o.MaxRequestsJitter != 0.5 || !o.H2C || o.Delay != time.Second {
					return fmt.Sprintf("%+v", *o)
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetAll(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			o, err := parseServe(t, tt.args...)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if msg := tt.check(o); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func maxRequests(n int, source string) func(*serveOptions) string {
	return func(o *serveOptions) string {
		if o.MaxRequests != n || o.Sources["max-requests"] != source {
			return fmt.Sprintf("max-requests %d from %s, want %d from %s", o.MaxRequests, o.Sources["max-requests"], n, source)
		}
		return ""
	}
}

func hostname(h string) func(*serveOptions) string {
	return func(o *serveOptions) string {
		if o.Hostname != h {
			return fmt.Sprintf("hostname %q, want %q", o.Hostname, h)
		}
		return ""
	}
}

func TestServeBadInput(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // must appear in the error
	}{
		{"non-numeric MAX_REQUEST", map[string]string{"MAX_REQUEST": "lots"}, nil, `MAX_REQUEST="lots": not an integer (it sets --max-requests)`},
		{"negative MAX_REQUEST", map[string]string{"MAX_REQUEST": "-1"}, nil, "MAX_REQUEST (--max-requests): must not be negative, got -1"},
		{"negative KALOAD_MAX_REQUESTS", map[string]string{"KALOAD_MAX_REQUESTS": "-5"}, nil, "KALOAD_MAX_REQUESTS"},
		{"negative flag", nil, []string{"--max-requests=-2"}, "--max-requests: must not be negative"},
		{"bad duration env", map[string]string{"KALOAD_MAX_CONN_AGE": "soon"}, nil, `KALOAD_MAX_CONN_AGE="soon": not a duration`},
		{"bad bool env", map[string]string{"KALOAD_H2C": "maybe"}, nil, "KALOAD_H2C"},
		{"jitter too big", nil, []string{"--max-requests-jitter", "1.5"}, "--max-requests-jitter: must be within 0..1"},
		{"conn age jitter env", map[string]string{"KALOAD_MAX_CONN_AGE_JITTER": "-0.1"}, nil, "KALOAD_MAX_CONN_AGE_JITTER"},
		{"capacity", nil, []string{"--capacity", "-1"}, "--capacity"},
		{"grace", nil, []string{"--shutdown-grace", "0s"}, "--shutdown-grace"},
		{"read timeout", map[string]string{"KALOAD_READ_TIMEOUT": "0s"}, nil, "KALOAD_READ_TIMEOUT (--read-timeout): must be positive, got 0s"},
		{"drain delay", map[string]string{"KALOAD_DRAIN_DELAY": "-1s"}, nil, "KALOAD_DRAIN_DELAY (--drain-delay): must not be negative, got -1s"},
		{"tls half", nil, []string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key"},
		{"unknown flag", nil, []string{"--max-request", "5"}, "unknown flag"},
		{"args", nil, []string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetAll(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"serve"}, tt.args...), &streams{In: strings.NewReader(""), Out: &out, Err: &errb})
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", errb.String(), tt.want)
			}
		})
	}
}

// unsetAll removes every serve variable for the test, restoring them after.
func unsetAll(t *testing.T) {
	t.Helper()
	for _, v := range serveEnvVars {
		t.Setenv(v, "") // registers restoration
		os.Unsetenv(v)
	}
}

// syncBuffer lets the test read stderr while the command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeRunsAndDrains runs the real command: it prints its startup line,
// serves with the env-configured limit, and exits 0 when ctx ends (as on
// SIGTERM).
func TestServeRunsAndDrains(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	unsetAll(t)
	t.Setenv("MAX_REQUEST", "2")
	t.Setenv("POD_NAME", "pod-a")
	errb := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--log-requests"}, &streams{In: strings.NewReader(""), Out: io.Discard, Err: errb})
	}()
	addrRE := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+) .*hostname=pod-a max-requests=2`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(errb.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no startup line; stderr:\n%s", errb.String())
		}
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var closes []bool
	for range 4 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Accept-Request-hostname"); got != "pod-a" {
			t.Errorf("backend header %q, want pod-a", got)
		}
		closes = append(closes, resp.Close)
	}
	if fmt.Sprint(closes) != "[false true false true]" {
		t.Errorf("Connection: close pattern %v, want [false true false true]", closes)
	}
	cancel()
	select {
	case code := <-codec:
		if code != exitOK {
			t.Errorf("exit code %d after drain, want 0; stderr:\n%s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not exit after ctx was cancelled")
	}
	// --log-requests wrote one JSON record per request.
	var logged int
	sc := bufio.NewScanner(strings.NewReader(errb.String()))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "{") && strings.Contains(sc.Text(), `"msg":"request"`) {
			logged++
		}
	}
	if logged != 4 {
		t.Errorf("%d request log records, want 4:\n%s", logged, errb.String())
	}
}

func TestServeListenError(t *testing.T) {
	unsetAll(t)
	var errb bytes.Buffer
	code := run(context.Background(), []string{"serve", "--listen", "256.0.0.1:1"}, &streams{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
	if code != exitRuntime || !strings.Contains(errb.String(), "listen on 256.0.0.1:1") {
		t.Errorf("exit %d, stderr %q; want 1 naming the address", code, errb.String())
	}
}

func TestServeHelpHasExamples(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"serve", "--help"}, &streams{In: strings.NewReader(""), Out: &out, Err: &out})
	if code != exitOK || !strings.Contains(out.String(), "MAX_REQUEST=50 POD_NAME=web-1 kaload serve") || !strings.Contains(out.String(), "--max-conn-age-grace") {
		t.Errorf("help (exit %d):\n%s", code, out.String())
	}
}

func TestCompletionBash(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"completion", "bash"}, &streams{In: strings.NewReader(""), Out: &out, Err: &out})
	if code != exitOK || !strings.Contains(out.String(), "__start_kaload") {
		t.Errorf("completion bash (exit %d) did not print a bash completion script", code)
	}
}
