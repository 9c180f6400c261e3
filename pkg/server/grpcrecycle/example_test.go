package grpcrecycle_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kaload/kaload/pkg/server/grpcrecycle"
)

// A gRPC service whose connections each carry at most 3 RPCs: the client
// reconnects transparently and no RPC fails.
func Example() {
	hs := health.NewServer() // the services, shared by every connection's grpc.Server
	srv, err := grpcrecycle.New(grpcrecycle.Config{MaxRPCs: 3}, func(gs *grpc.Server) {
		healthpb.RegisterHealthServer(gs, hs)
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.GracefulStop()

	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	for range 9 {
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			log.Fatal(err)
		}
	}
	st := srv.Stats()
	fmt.Println("RPCs:", st.RPCs, "connections:", st.TotalConns)
	// Output: RPCs: 9 connections: 3
}
