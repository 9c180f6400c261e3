package client

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/kaload/kaload/internal/servertest"
	"github.com/kaload/kaload/pkg/server"
	"github.com/kaload/kaload/pkg/server/kaloadpb"
)

// TestGRPCMaxRequests is the proof: 1000 unary RPCs over 10
// connections against a server that ends a connection after 5 make exactly
// 200 connections, every RPC succeeds, and each connection's last RPC
// carries the GOAWAY.
func TestGRPCMaxRequests(t *testing.T) {
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-a", MaxRequests: 5})
	var c collector
	st, err := Run(context.Background(), Config{URL: s.GRPCURL, Connections: 10, Requests: 1000}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 1000 || st.Errors != 0 || st.Connections != 200 || len(c.res) != 1000 {
		t.Fatalf("stats %+v, %d results; want 1000 RPCs, 0 errors, 200 connections", st, len(c.res))
	}
	conns := map[uint64]int{}
	goaways := 0
	for _, r := range c.res {
		if r.Backend != "pod-a" || r.Status != 200 || r.GRPCCode != 0 || r.Err != "" || r.ServerTotal < 1 {
			t.Fatalf("result %+v", r)
		}
		conns[r.Conn]++
		if r.Close == CloseGoAway {
			goaways++
			if r.ConnReq != 5 {
				t.Errorf("GOAWAY on the RPC at position %d, want 5", r.ConnReq)
			}
		}
	}
	if len(conns) != 200 || goaways != 200 {
		t.Errorf("%d connections in results, %d GOAWAY closes; want 200 and 200", len(conns), goaways)
	}
	for id, n := range conns {
		if n != 5 {
			t.Errorf("connection %d carried %d RPCs, want 5", id, n)
		}
	}
	if st.Closes[CloseGoAway] != 200 || st.GoAways["NO_ERROR graceful_stop"] != 200 {
		t.Errorf("closes %v, GOAWAYs %v; want 200 graceful_stop", st.Closes, st.GoAways)
	}
}

// TestGRPCStreamMaxConnAge: server streams outlive the connection age and
// its grace, end with Unavailable, and are reopened; unary RPCs in the same
// run on other slots never fail.
//
// The grace is what lets an RPC accepted up to the GOAWAY finish; grpc-go's
// server cuts whatever is still in flight when it expires (the client then
// rightly records Unavailable). So "never fail" holds only while no stall of
// the machine (the test's client and server alike) outlasts the grace: with
// 200 ms, SIGSTOPs of up to 300 ms cut 2 unary RPCs in 20 runs. A 1 s grace
// bounds what a loaded machine may stall, and the stream's life grows with
// it (age + grace + the 1 s grpc-go's server waits before closing a
// connection whose writer stopped, about 2.3 s): in 4 s two streams must
// end, not four in 3.5 s (which a stall of 0.5 s in all already broke).
func TestGRPCStreamMaxConnAge(t *testing.T) {
	const age, grace, run = 300 * time.Millisecond, time.Second, 4 * time.Second
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-s", MaxConnAge: age,
		MaxConnAgeGrace: grace, StreamInterval: 20 * time.Millisecond})
	var streams, unary collector
	done := make(chan Stats, 1)
	go func() {
		st, err := Run(context.Background(), Config{URL: s.GRPCURL, Connections: 2, Rate: 200, Duration: run}, &unary)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	st, err := Run(context.Background(), Config{URL: s.GRPCURL, Call: "kaload.v1.Kaload/Stream", GRPCStream: true,
		Connections: 2, Duration: run}, &streams)
	if err != nil {
		t.Fatal(err)
	}
	ust := <-done
	if ust.Errors != 0 || ust.Requests < 10 || ust.Closes[CloseGoAway] < 2 {
		t.Errorf("unary: %d RPCs, %d failed, closes %v; want none failed across GOAWAYs", ust.Requests, ust.Errors, ust.Closes)
		for _, r := range unary.res {
			if r.Err != "" {
				t.Logf("unary seq %d due %v, %v later on conn %d: %s", r.Seq, r.Start, r.Latency, r.Conn, r.Err)
			}
		}
	}
	var msgs, ended, lives, livesEnded int
	conns := map[uint64]bool{}
	for _, r := range streams.res {
		if r.Kind == KindSocket { // a stream's life: how long pod-s held it
			lives++
			if r.Close == CloseGoAway && r.Latency > grace && r.ConnReq > 0 {
				livesEnded++
			}
			continue
		}
		if r.Err == "" {
			msgs++
			conns[r.Conn] = true
			if r.Backend != "pod-s" {
				t.Errorf("message from %q", r.Backend)
			}
			continue
		}
		ended++
		if GRPCCodeName(r.GRPCCode) != "Unavailable" {
			t.Errorf("stream ended with %s: %s", GRPCCodeName(r.GRPCCode), r.Err)
		}
	}
	// Each stream outlived its connection's age (less up to 10% jitter)
	// and grace, and the slot reopened it on a new connection: one open per
	// slot at the end, one connection with messages per stream.
	if lives != ended+2 || livesEnded != ended {
		t.Errorf("%d stream records, %d ended by GOAWAY after their messages and the grace; want one per stream (%d ended + 2 open at the end)", lives, livesEnded, ended)
	}
	if msgs < 50 || ended < 2 || len(conns) < ended+2 || st.Errors != int64(ended) {
		t.Errorf("%d messages, %d streams ended over %d connections (stats %+v)", msgs, ended, len(conns), st)
	}
}

func TestGRPCDataAndReflection(t *testing.T) {
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-r"})
	// grpc.health.v1 is not compiled into kaload's client: found by reflection.
	var c collector
	st, err := Run(context.Background(), Config{URL: s.GRPCURL, Call: "grpc.health.v1.Health/Check",
		Body: []byte(`{"service":"kaload.v1.Kaload"}`), Requests: 3, Connections: 1}, &c)
	if err != nil || st.Errors != 0 || len(c.res) != 3 {
		t.Fatalf("health by reflection: %v, %+v", err, st)
	}
	// A service the health server does not know: NotFound, counted by code.
	c = collector{}
	st, err = Run(context.Background(), Config{URL: s.GRPCURL, Call: "grpc.health.v1.Health/Check",
		Body: []byte(`{"service":"nope"}`), Requests: 2, Connections: 1}, &c)
	if err != nil || st.Errors != 2 || GRPCCodeName(c.res[0].GRPCCode) != "NotFound" {
		t.Fatalf("unknown service: %v, %+v, %+v", err, st, c.res)
	}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad JSON", Config{Body: []byte(`{"payload": 3}`)}, "Body: not a JSON kaload.v1.PingRequest"},
		{"no such method", Config{Call: "kaload.v1.Kaload/Nope"}, "has no method Nope"},
		{"no such service", Config{Call: "no.Such/Thing"}, "service no.Such by server reflection"},
		{"stream without --stream", Config{Call: "kaload.v1.Kaload/Stream"}, "a stream is needed"},
		{"--stream on unary", Config{GRPCStream: true}, "is not server-streaming"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL, cfg.Requests = s.GRPCURL, 1
			_, err := Run(context.Background(), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGRPCProtoAndProtoset(t *testing.T) {
	s := servertest.StartGRPC(t, server.Config{Hostname: "pod-p"})
	dir := t.TempDir()
	proto3 := `syntax = "proto3";
package kaload.v1;
service Kaload { rpc Ping(PingRequest) returns (PingReply); }
message PingRequest { bytes payload = 1; }
message PingReply { string backend = 1; }
`
	protoPath := filepath.Join(dir, "k.proto")
	if err := os.WriteFile(protoPath, []byte(proto3), 0o644); err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(kaloadpb.File_kaload_proto)}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	setPath := filepath.Join(dir, "k.protoset")
	if err := os.WriteFile(setPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{ProtoFiles: []string{"k.proto"}, ImportPaths: []string{dir}},
		{ProtosetFiles: []string{setPath}},
	} {
		cfg.URL, cfg.Requests, cfg.Body = s.GRPCURL, 4, []byte(`{"payload":"aGk="}`)
		cfg.Header = http.Header{"X-Tenant": {"t1"}, "Trace-Bin": {"AAEC"}}
		var c collector
		st, err := Run(context.Background(), cfg, &c)
		if err != nil || st.Errors != 0 || st.Requests != 4 || c.res[0].Backend != "pod-p" {
			t.Errorf("%v %v: %+v %v", cfg.ProtoFiles, cfg.ProtosetFiles, st, err)
		}
	}
}

func TestGRPCValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "grpc://h:1/path", Requests: 1}, "the method is named apart"},
		{Config{URL: "grpc://h:1", Requests: 1, H2C: true}, "gRPC is always HTTP/2"},
		{Config{URL: "grpc://h:1", Requests: 1, Call: "nomethod"}, "is not SERVICE/METHOD"},
		{Config{URL: "grpc://h:1", Requests: 1, GRPCStream: true, Rate: 5}, "no rate"},
		{Config{URL: "grpc://h:1", Requests: 1, Header: http.Header{"Grpc-Timeout": {"1"}}}, "reserved for gRPC"},
		{Config{URL: "grpc://h:1", Requests: 1, Header: http.Header{"X-A": {"\x01"}}}, "not printable ASCII"},
		{Config{URL: "http://h:1", Requests: 1, Call: "a.B/C"}, "needs a grpc:// or grpcs:// URL"},
		{Config{URL: "grpc://h:1", Requests: 1, ProtoFiles: []string{"a"}, ProtosetFiles: []string{"b"}}, "choose one"},
	} {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestGRPCAgainstGRPCGoMaxConnectionAge drives a server nobody here wrote:
// grpc-go's own server with keepalive MaxConnectionAge, serving grpc-go's
// health service, found by reflection. Connections end by grpc-go's
// "max_age" GOAWAY and no RPC fails.
func TestGRPCAgainstGRPCGoMaxConnectionAge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 300 * time.Millisecond,
		MaxConnectionAgeGrace: time.Second}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	reflection.Register(gs)
	go gs.Serve(ln)
	defer gs.Stop()
	var c collector
	st, err := Run(context.Background(), Config{URL: "grpc://" + ln.Addr().String(), Call: "grpc.health.v1.Health/Check",
		Connections: 4, Rate: 400, Duration: 1500 * time.Millisecond}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if st.Errors != 0 || st.Requests < 300 || st.GoAways["NO_ERROR max_age"] < 4 || st.Connections < 8 {
		t.Errorf("stats %+v; want no error and every slot's connection ended by max_age at least once", st)
	}
	goaway := 0
	for _, r := range c.res {
		if r.Close == CloseGoAway {
			goaway++
		}
		if r.Backend != ln.Addr().String() {
			t.Fatalf("backend %q, want the peer address (grpc-go's server names none)", r.Backend)
		}
	}
	if goaway == 0 {
		t.Errorf("no RPC carries the GOAWAY close reason")
	}
}

// TestGRPCS: grpcs:// verifies the server with RootCAs, or skips the check
// with Insecure; an unknown authority fails every RPC (Unavailable).
func TestGRPCS(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS() // only for its certificate (127.0.0.1, example.com)
	cert := ts.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	ts.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	reflection.Register(gs)
	go gs.Serve(ln)
	defer gs.Stop()
	url := "grpcs://" + ln.Addr().String()
	for _, cfg := range []Config{{RootCAs: pool}, {Insecure: true}} {
		cfg.URL, cfg.Call, cfg.Requests, cfg.Connections = url, "grpc.health.v1.Health/Check", 5, 1
		st, err := Run(context.Background(), cfg, nil)
		if err != nil || st.Errors != 0 || st.Requests != 5 {
			t.Errorf("RootCAs %v Insecure %v: %+v %v", cfg.RootCAs != nil, cfg.Insecure, st, err)
		}
	}
	// (grpc.health.v1 is linked into this test binary: no reflection call.)
	var c collector
	st, err := Run(context.Background(), Config{URL: url, Call: "grpc.health.v1.Health/Check", Requests: 1}, &c)
	if err != nil || st.Errors != 1 || !strings.Contains(c.res[0].Err, "certificate") || GRPCCodeName(c.res[0].GRPCCode) != "Unavailable" {
		t.Errorf("unknown authority: %v, %+v", err, c.res)
	}
}
