package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kaload/kaload/pkg/client"
)

// grpcFlags are hammer's gRPC flags that need more than a plain value.
type grpcFlags struct {
	data   string
	stream string
	cacert string
}

func (g *grpcFlags) register(f *pflag.FlagSet, c *client.Config) {
	f.StringVar(&c.Call, "call", "", "gRPC method `SERVICE/METHOD` (default "+client.DefaultCall+")")
	f.StringVar(&g.data, "data", "", "gRPC request message as JSON, or @FILE (the same as --body)")
	f.StringArrayVar(&c.ProtoFiles, "proto", nil, "gRPC: .proto `FILE` describing --call (repeatable; default: server reflection)")
	f.StringArrayVar(&c.ProtosetFiles, "protoset", nil, "gRPC: FileDescriptorSet `FILE` (protoc --descriptor_set_out; repeatable)")
	f.StringArrayVar(&c.ImportPaths, "import-path", nil, "gRPC: directory searched for --proto files and their imports (repeatable)")
	f.StringVar(&g.stream, "stream", "", "gRPC: 'server' keeps a server-streaming RPC open per connection and records every message")
	f.StringVar(&g.cacert, "cacert", "", "CA certificates (PEM `FILE`) that verify a grpcs:// server")
}

// apply checks the gRPC flags and sets what they mean in c.
func (g *grpcFlags) apply(f *pflag.FlagSet, c *client.Config, body *string) error {
	if f.Changed("data") {
		if f.Changed("body") {
			return usageErrorf("--data and --body: give one (they are the same)")
		}
		*body = g.data
	}
	switch g.stream {
	case "":
	case "server":
		c.GRPCStream = true
	default:
		return usageErrorf("--stream %q: only 'server' (server-streaming RPCs) is supported", g.stream)
	}
	if g.cacert != "" {
		pem, err := os.ReadFile(g.cacert)
		if err != nil {
			return usageErrorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usageErrorf("--cacert %s: no PEM certificate in it", g.cacert)
		}
		c.RootCAs = pool
	}
	if len(c.ProtoFiles) > 0 && len(c.ImportPaths) == 0 {
		// Without --import-path each file's directory is searched, so
		// that --proto path/to/x.proto works as grpcurl's does.
		for i, p := range c.ProtoFiles {
			dir := filepath.Dir(p)
			if !slices.Contains(c.ImportPaths, dir) {
				c.ImportPaths = append(c.ImportPaths, dir)
			}
			c.ProtoFiles[i] = filepath.Base(p)
		}
	}
	return nil
}

// goAwayLine renders GOAWAY counts, most frequent first.
func goAwayLine(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}
