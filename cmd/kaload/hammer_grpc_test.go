package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report"
	"github.com/kaload/kaload/pkg/report/results"
	"github.com/kaload/kaload/pkg/server"
)

// The proof through the command, for gRPC: --max-requests 5 on the
// server, 1000 unary RPCs over 10 connections: exactly 200 connections, no
// failed RPC, and kaload report reads the file back with the same figures.
func TestHammerGRPCEndToEnd(t *testing.T) {
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-a", MaxRequests: 5})
	file := filepath.Join(t.TempDir(), "run.jsonl")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", s.GRPCURL, "-n", "1000", "-c", "10",
		"-o", file, "--format", "json", "--expect", "errors==0", "--expect", "requests_per_connection<=5")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "gRPC connections ended by GOAWAY: 200 NO_ERROR graceful_stop") {
		t.Errorf("stderr lacks the GOAWAY line:\n%s", stderr)
	}
	sum := report.Report{Summary: &report.Summary{}}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("json summary: %v\n%s", err, stdout)
	}
	if sum.Requests != 1000 || sum.Errors != 0 || sum.Connections != 200 || sum.CloseReasons["goaway"] != 200 {
		t.Errorf("requests %d errors %d connections %d closes %v, want 1000 0 200 and 200 goaway",
			sum.Requests, sum.Errors, sum.Connections, sum.CloseReasons)
	}
	code, stdout, stderr = runKaload(context.Background(), "report", file, "--format", "json")
	if code != 0 {
		t.Fatalf("report: exit %d; %s", code, stderr)
	}
	back := report.Report{Summary: &report.Summary{}}
	if err := json.Unmarshal([]byte(stdout), &back); err != nil {
		t.Fatal(err)
	}
	if back.Requests != 1000 || back.Connections != 200 || back.Protocol != "grpc" {
		t.Errorf("report: %d requests on %d connections, protocol %q", back.Requests, back.Connections, back.Protocol)
	}
	if code, stdout, _ = runKaload(context.Background(), "report", file); code != 0 || !strings.Contains(stdout, "Protocol: grpc") {
		t.Errorf("report table (exit %d) does not name the protocol:\n%s", code, stdout)
	}
}

// Failed RPCs are data: counted by status code in error_kinds, and the
// results file keeps the code.
func TestHammerGRPCStatusCodes(t *testing.T) {
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-a"})
	file := filepath.Join(t.TempDir(), "run.kld")
	code, stdout, stderr := runKaload(context.Background(), "hammer", "--url", s.GRPCURL, "-n", "20", "-c", "2",
		"--call", "grpc.health.v1.Health/Check", "--data", `{"service":"nope"}`, "-o", file, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	sum := report.Report{Summary: &report.Summary{}}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 20 || sum.ErrorKinds["grpc NotFound"] != 20 {
		t.Errorf("errors %d kinds %v, want 20 grpc NotFound", sum.Errors, sum.ErrorKinds)
	}
	r, err := results.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var res client.Result
	for {
		if err := r.Read(&res); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if client.GRPCCodeName(res.GRPCCode) != "NotFound" {
			t.Fatalf("record %+v", res)
		}
	}
}

func TestHammerGRPCUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "grpc://127.0.0.1:1", "--stream", "client"}, "--stream"},
		{[]string{"--url", "grpc://127.0.0.1:1", "--data", "{}", "--body", "{}"}, "--data and --body"},
		{[]string{"--url", "grpc://127.0.0.1:1", "--call", "x"}, "--call"},
		{[]string{"--url", "grpc://127.0.0.1:1", "--cacert", "/nonexistent"}, "--cacert"},
		{[]string{"--url", "http://127.0.0.1:1/", "--call", "a.B/C"}, "needs a grpc://"},
	} {
		code, _, stderr := runKaload(context.Background(), append([]string{"hammer"}, tt.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}
