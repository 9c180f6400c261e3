package client

import (
	"context"
	"net"
	"testing"
)

func TestOnThisHost(t *testing.T) {
	tests := []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080/", true},
		{"http://127.0.0.2/", true},
		{"http://[::1]:80/", true},
		{"grpc://localhost:50051", true},
		{"http://192.0.2.1/", false}, // TEST-NET-1: on no interface here
		{"http://[2001:db8::1]/", false},
		{"http://name.invalid/", false}, // does not resolve: not known to be local
		{"::not a url", false},
		{"http:///path", false},
	}
	// An address of one of this machine's interfaces is on this host too.
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				tests = append(tests, struct {
					url  string
					want bool
				}{"http://" + n.IP.String() + "/", true})
				break
			}
		}
	}
	for _, tt := range tests {
		if got := OnThisHost(context.Background(), tt.url); got != tt.want {
			t.Errorf("OnThisHost(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
