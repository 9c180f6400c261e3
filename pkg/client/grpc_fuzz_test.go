package client

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzEncodeRequest feeds --data JSON to the encoder of a message with
// every field shape (nested messages, enums, repeated, maps via options):
// it never panics, and what it accepts decodes back to the same message.
func FuzzEncodeRequest(f *testing.F) {
	md := (&descriptorpb.FileDescriptorProto{}).ProtoReflect().Descriptor()
	for _, s := range []string{``, `{}`, `{"name":"a.proto","package":"p"}`,
		`{"messageType":[{"name":"M","field":[{"name":"f","number":1,"type":"TYPE_STRING","label":"LABEL_REPEATED"}]}]}`,
		`{"options":{"javaPackage":"x","optimizeFor":"SPEED"}}`, `{"name":1}`, `{"syntax":"\u00e9"}`, `[`, `{"dependency":["a","b"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := encodeRequest(md, data)
		if err != nil {
			return
		}
		want := dynamicpb.NewMessage(md)
		if strings.TrimSpace(string(data)) != "" {
			if err := protojson.Unmarshal(data, want); err != nil {
				t.Fatalf("encodeRequest accepted what protojson refuses: %v", err)
			}
		}
		got := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, got); err != nil {
			t.Fatalf("encoded bytes do not decode: %v", err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("round trip differs:\n got %v\nwant %v", got, want)
		}
	})
}

// FuzzGRPCMetadata feeds -H headers to the metadata conversion: no panic,
// and every accepted key is a valid lower-case gRPC key.
func FuzzGRPCMetadata(f *testing.F) {
	for _, s := range [][2]string{{"X-Tenant", "a"}, {"Trace-Bin", "AAEC"}, {"Host", "svc"}, {"grpc-timeout", "1S"},
		{":path", "/x"}, {"X-Ü", "v"}, {"A", "\x00"}, {"Te", "trailers"}, {"B-Bin", "!!"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		md, _, err := grpcMetadata(http.Header{name: {value}})
		if err != nil {
			return
		}
		for k := range md {
			if k != strings.ToLower(k) || k == "" || strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, ":") {
				t.Fatalf("accepted key %q", k)
			}
		}
	})
}

// FuzzParseCall: no panic; an accepted call names a valid service and method.
func FuzzParseCall(f *testing.F) {
	for _, s := range []string{DefaultCall, "/a.B/C", "a.B.C", "B/C", "", "/", "a..b/C", "a.B/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, call string) {
		svc, m, err := parseCall(call)
		if err != nil {
			return
		}
		if svc == "" || m == "" || strings.ContainsAny(m, "/.") {
			t.Fatalf("%q -> %q %q", call, svc, m)
		}
	})
}
