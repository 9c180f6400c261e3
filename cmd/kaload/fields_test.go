package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaload/kaload/pkg/field"
)

// TestFlagErrorsNameTheFlag: every error a user can trigger through a flag
// (or, for serve, a variable) names that flag, with the library's own words
// after it. The libraries' tests check that the same errors name the field.
func TestFlagErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	url := []string{"--url", "http://127.0.0.1:1/"}
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string // a line of stderr, after "kaload: " on the first
	}{
		// serve: server.New's and recycle.New's fields
		{args: []string{"serve", "--max-requests=-1"}, want: "--max-requests: must not be negative, got -1"},
		{args: []string{"serve"}, env: map[string]string{"MAX_REQUEST": "-1"}, want: "MAX_REQUEST (--max-requests): must not be negative, got -1"},
		{args: []string{"serve"}, env: map[string]string{"KALOAD_MAX_REQUESTS": "-1"}, want: "KALOAD_MAX_REQUESTS (--max-requests): must not be negative, got -1"},
		{args: []string{"serve", "--max-requests-jitter", "1.5"}, want: "--max-requests-jitter: must be within 0..1, got 1.5"},
		{args: []string{"serve", "--max-conn-age", "-1s"}, want: "--max-conn-age: must not be negative, got -1s"},
		{args: []string{"serve", "--max-conn-age-jitter", "2"}, want: "--max-conn-age-jitter: must be within 0..1, got 2"},
		{args: []string{"serve", "--max-conn-age-grace", "-1s"}, want: "--max-conn-age-grace: must not be negative, got -1s"},
		{args: []string{"serve", "--cpu", "-1ms"}, want: "--cpu: must not be negative, got -1ms"},
		{args: []string{"serve", "--delay", "-1ms"}, want: "--delay: must not be negative, got -1ms"},
		{args: []string{"serve", "--response-size", "-1"}, want: "--response-size: must be within 0..1073741824, got -1"},
		{args: []string{"serve", "--capacity", "-1"}, want: "--capacity: must be within 0..1e9 requests/s, got -1"},
		{args: []string{"serve", "--drain-delay", "-1s"}, want: "--drain-delay: must not be negative, got -1s"},
		{args: []string{"serve", "--shutdown-grace", "-1s"}, want: "--shutdown-grace: must not be negative, got -1s"},
		{args: []string{"serve", "--shutdown-grace", "0s"}, want: "--shutdown-grace: must be positive, got 0s"},
		{args: []string{"serve", "--ws-close-grace", "-1s"}, want: "--ws-close-grace: must not be negative, got -1s"},
		{args: []string{"serve", "--ws-close-grace", "0s"}, want: "--ws-close-grace: must be positive, got 0s"},
		{args: []string{"serve", "--stream-interval", "-1s"}, want: "--stream-interval: must not be negative, got -1s"},
		{args: []string{"serve", "--read-timeout", "-1s"}, want: "--read-timeout: must not be negative, got -1s"},
		{args: []string{"serve", "--read-timeout", "0s"}, want: "--read-timeout: must be positive, got 0s"},
		{args: []string{"serve", "--stream-interval", "0s"}, want: "--stream-interval: must be positive, got 0s"},
		{args: []string{"serve", "--backend-header", "a b"}, want: `--backend-header: "a b" is not a valid header name`},
		{args: []string{"serve", "--tls-cert", "c.pem"}, want: "--tls-cert and --tls-key: must be set together"},
		{args: []string{"serve", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"}, want: "--tls-cert: open /nonexistent/c.pem: no such file or directory"},
		{args: []string{"serve", "--tls-cert", notDir, "--tls-key", notDir}, want: "--tls-cert and --tls-key: " + notDir + " and " + notDir + ": tls: failed to find any PEM data in certificate input"},
		{args: []string{"serve", "--listen", ""}, want: "--listen: must not be empty"},
		{args: []string{"serve", "--max-requests", "x"}, want: `invalid argument "x" for "--max-requests" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{args: []string{"serve"}, env: map[string]string{"KALOAD_CPU": "-1ms"}, want: "KALOAD_CPU (--cpu): must not be negative, got -1ms"},
		{args: []string{"serve", "--cpu", "-1ms", "--delay", "-1ms"}, want: "--delay: must not be negative, got -1ms"}, // both, one a line

		// hammer: client.Config's fields
		{args: []string{"hammer"}, want: "--url: required"},
		{args: []string{"hammer", "--url", "ftp://h/"}, want: `--url: scheme "ftp" is not http, https, ws, wss, grpc or grpcs`},
		{args: []string{"hammer", "--url", "http://h:99999/"}, want: `--url: bad port "99999"`},
		{args: []string{"hammer", "--url", "http://u@h/"}, want: "--url: user info in the URL is not supported; send an Authorization header"},
		{args: []string{"hammer", "--url", "http://h/", "--http2"}, want: "--url and --http2: HTTP/2 over TLS needs an https:// URL"},
		{args: []string{"hammer", "--url", "https://h/", "--h2c"}, want: "--url and --h2c: cleartext HTTP/2 needs an http:// URL"},
		{args: []string{"hammer", "--url", "https://h/", "--h2c", "--http2"}, want: "--http2 and --h2c: choose one"},
		{args: append([]string{"hammer", "-c", "2000000"}, url...), want: "--connections: must be between 1 and 1048576, got 2000000"},
		{args: append([]string{"hammer", "-c", "0"}, url...), want: "--connections 0: must be at least 1"},
		{args: append([]string{"hammer", "-d", "-1s"}, url...), want: "--duration: must not be negative, got -1s"},
		{args: append([]string{"hammer", "-n", "-1"}, url...), want: "--requests: must not be negative, got -1"},
		{args: append([]string{"hammer", "-d", "0"}, url...), want: "--duration and --requests: one limit is required"},
		{args: append([]string{"hammer", "--rate", "-1"}, url...), want: "--rate: must be between 0 and 1e9 requests/s, got -1"},
		{args: append([]string{"hammer", "--timeout", "-1s"}, url...), want: "--timeout: must not be negative, got -1s"},
		{args: append([]string{"hammer", "-X", "GE T"}, url...), want: `--method: "GE T" is not a valid HTTP method`},
		{args: append([]string{"hammer", "-H", "A(b: v"}, url...), want: `--header: "A(b" is not a valid header name`},
		{args: append([]string{"hammer", "-H", "nocolon"}, url...), want: `--header "nocolon": want 'Name: value'`},
		{args: append([]string{"hammer", "--max-requests-per-conn", "-1"}, url...), want: "--max-requests-per-conn: must not be negative, got -1"},
		{args: append([]string{"hammer", "--streams", "-1"}, url...), want: "--streams: must be between 1 and 1000, got -1"},
		{args: append([]string{"hammer", "--streams", "4"}, url...), want: "--streams: needs HTTP/2 or gRPC: HTTP/1.1 and WebSocket carry one request per connection at a time"},
		{args: append([]string{"hammer", "--streams", "4", "--h2c", "--rate", "10"}, url...), want: "--streams and --rate: several streams per connection need the closed model (no rate)"},
		{args: append([]string{"hammer", "--backend-header", "a:b"}, url...), want: `--backend-header: "a:b" is not a valid header name`},
		{args: append([]string{"hammer", "--body", "@/nonexistent/b"}, url...), want: "--body: open /nonexistent/b: no such file or directory"},
		{args: append([]string{"hammer", "--cpus", "-1"}, url...), want: "--cpus -1: must not be negative"},
		{args: append([]string{"hammer", "--interval", "0s"}, url...), want: "--interval 0s: must be positive"},
		{args: append([]string{"hammer", "--format", "xml"}, url...), want: `--format "xml": valid formats are`},
		{args: append([]string{"hammer", "--expect", "p99<<1"}, url...), want: "--expect: "},
		{args: append([]string{"hammer", "-n", "1", "-o", filepath.Join(notDir, "run.kld")}, url...), code: exitRuntime, want: "--output " + filepath.Join(notDir, "run.kld") + ": "},

		// report: its own flags
		{args: []string{"report", "x.kld", "--format", "xml"}, want: `--format "xml": valid formats are`},
		{args: []string{"report", "x.kld", "--from", "-1s"}, want: "--from -1s: must not be negative"},
		{args: []string{"report", "x.kld", "--to", "-1s"}, want: "--to -1s: must not be negative"},
		{args: []string{"report", "x.kld", "--from", "2s", "--to", "1s"}, want: "--to 1s must be after --from 2s"},
		{args: []string{"report", "x.kld", "--interval", "0s"}, want: "--interval 0s: must be positive"},
		{args: []string{"report", "x.kld", "--expect", "p99<<1"}, want: "--expect: "},

		// lab: lab.Config's fields
		{args: []string{"lab", "--pods", "three"}, want: `--pods: want START:END pod counts such as 1:3, got "three"`},
		{args: []string{"lab", "--pods", "3:1"}, want: "--pods: 3:1 does not scale up (want START:END with END > START)"},
		{args: []string{"lab", "--format", "yaml"}, want: `--format: unknown format "yaml" (want table, json or html)`},
		{args: []string{"lab", "--balancer", "ipvs-sh"}, want: `--balancer: unknown balancer policy "ipvs-sh" (want random or roundrobin)`},
		{args: []string{"lab", "--scale-at", "20s"}, want: "--scale-at and --duration: the scale event at 20s must lie inside the duration 12s"},
		{args: []string{"lab", "--max-requests", "-1"}, want: "--max-requests: -1 is negative"},
		{args: []string{"lab", "--max-requests", "5,5"}, want: `--max-requests or --max-conn-age: scenario "max-requests=5" is listed twice`},
		{args: []string{"lab", "--max-conn-age", "-1s"}, want: "--max-conn-age: -1s must be > 0"},
		{args: []string{"lab", "--rate", "0"}, want: "--rate: must be > 0 (the lab keeps the load fixed), got 0"},
		{args: []string{"lab", "-c", "0"}, want: "--connections: must be >= 1, got 0"},
		{args: []string{"lab", "-d", "0s"}, want: "--duration: must be > 0, got 0s"},
		{args: []string{"lab", "--pod-capacity", "-1"}, want: "--pod-capacity: must be >= 0, got -1"},
		{args: []string{"lab", "--hpa", "--max-pods", "0"}, want: "--max-pods: 0 is below the starting 1 pods"},
		{args: []string{"lab", "--hpa", "--sync", "20s"}, want: "--sync and --duration: the sync period must be > 0 and shorter than the duration 12s, got 20s"},
		{args: []string{"lab", "--hpa", "--target-rps-per-pod", "0"}, want: "--target-rps-per-pod: must be > 0, got 0"},
		{args: []string{"lab", "--expect", "bogus>1"}, want: `--expect "bogus>1": `},
		{args: []string{"lab", "-d", "2s", "--scale-at", "1s", "-o", filepath.Join(notDir, "out")}, code: exitRuntime, want: "--output: mkdir " + notDir + ": not a directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			unsetAll(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			want := tt.code
			if want == 0 {
				want = exitUsage
			}
			code, _, stderr := runKaload(context.Background(), tt.args...)
			if code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			lines := strings.Split(strings.TrimPrefix(stderr, "kaload: "), "\n")
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, tt.want)
			}
			if !found {
				t.Errorf("stderr:\n%s\nhas no line starting %q", stderr, tt.want)
			}
			// No Go field name may reach the user.
			for _, fields := range []string{"MaxRequests", "ShutdownGrace", "TLSCertFile", "HTTP2", "Scenarios", "HPA.", "StartPods", "ResultsDir", "URL:"} {
				if strings.Contains(stderr, fields) {
					t.Errorf("stderr names the field %s:\n%s", fields, stderr)
				}
			}
		})
	}
}

// TestFlagOfFieldNamesRealFlags: the field -> flag table only names flags
// the command defines, so a renamed flag cannot leave a dangling mapping.
func TestFlagOfFieldNamesRealFlags(t *testing.T) {
	root := newRootCmd(&streams{})
	for command, fields := range flagOfField {
		cmd, _, err := root.Find([]string{command})
		if err != nil || cmd == root {
			t.Fatalf("no command %s: %v", command, err)
		}
		for f, flags := range fields {
			for _, fl := range strings.Split(flags, ",") {
				if cmd.Flags().Lookup(fl) == nil {
					t.Errorf("%s: field %s maps to --%s, which %s does not define", command, f, fl, cmd.Name())
				}
			}
		}
	}
}

func TestNamedByFlags(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  error
		want string
	}{
		{field.Errorf("MaxRequests", "bad"), "--max-requests: bad"},
		{&field.Error{Fields: []string{"TLSCertFile", "TLSKeyFile"}, Err: cause}, "--tls-cert and --tls-key: boom"},
		{errors.Join(field.Errorf("CPU", "a"), errors.New("plain"), field.Errorf("Delay", "b")), "--cpu: a\nplain\n--delay: b"},
		{errors.Join(errors.New("scenario x"), errors.New("wrapped")), "scenario x\nwrapped"},
		{field.Errorf("Registerer", "not a flag"), "Registerer: not a flag"},
	}
	for _, tt := range tests {
		if got := namedByFlags("serve", tt.err, nil).Error(); got != tt.want {
			t.Errorf("namedByFlags(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
	wrapped := namedByFlags("lab", errors.Join(fmt.Errorf("scenario s: %w", field.Errorf("Scenarios[3].MaxConnAge", "%w", cause))), nil)
	if want := "scenario s: --max-conn-age: boom"; wrapped.Error() != want || !errors.Is(wrapped, cause) {
		t.Errorf("wrapped: %q (is cause: %v), want %q", wrapped, errors.Is(wrapped, cause), want)
	}
	if namedByFlags("serve", nil, nil) != nil {
		t.Error("nil error mapped to non-nil")
	}
}

// TestOutputErrorPermissionHint: a file kaload may not create (a volume its
// uid cannot write, as root in tests cannot provoke) names the flag, the
// directory and the uid, with the fix.
func TestOutputErrorPermissionHint(t *testing.T) {
	err := outputError("--output", "/data/run.kld", &fs.PathError{Op: "open", Path: "/data/run.kld", Err: fs.ErrPermission})
	want := fmt.Sprintf("--output /data/run.kld: open /data/run.kld: permission denied\n"+
		"kaload runs as uid %d (gid %d), which may not write in /data: make the directory writable for that user "+
		"(in a Kubernetes pod: securityContext.fsGroup: %d, or mount a volume the user owns)", os.Getuid(), os.Getgid(), os.Getgid())
	if err.Error() != want || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("got %q\nwant %q", err, want)
	}
	if got := outputError("--junit", "x.xml", os.ErrNotExist).Error(); got != "--junit x.xml: file does not exist" {
		t.Errorf("other errors: %q", got)
	}
}
