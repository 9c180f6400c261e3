package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/jhump/protoreflect/desc/protoparse"
	"github.com/jhump/protoreflect/grpcreflect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/kaload/kaload/pkg/field"
	_ "github.com/kaload/kaload/pkg/server/kaloadpb" // kaload's own service resolves without reflection
)

// DefaultCall is the gRPC method hammer calls when Config.Call is empty.
const DefaultCall = "kaload.v1.Kaload/Ping"

// GRPCCodeName names a gRPC status code as grpc-go does ("Unavailable").
func GRPCCodeName(c uint16) string { return codes.Code(c).String() }

// parseCall splits "pkg.Service/Method", "/pkg.Service/Method" or
// "pkg.Service.Method" (as ghz and grpcurl accept) into the service's full
// name and the method's name.
func parseCall(call string) (service, method string, err error) {
	c := strings.TrimPrefix(call, "/")
	if i := strings.LastIndexByte(c, '/'); i >= 0 {
		service, method = c[:i], c[i+1:]
	} else if i := strings.LastIndexByte(c, '.'); i >= 0 {
		service, method = c[:i], c[i+1:]
	}
	if service == "" || method == "" {
		return "", "", fmt.Errorf("%q is not SERVICE/METHOD (e.g. %s)", call, DefaultCall)
	}
	if !protoreflect.FullName(service).IsValid() || !protoreflect.Name(method).IsValid() {
		return "", "", fmt.Errorf("%q: %q/%q is not a valid protobuf service and method name", call, service, method)
	}
	return service, method, nil
}

// grpcMetadata turns -H headers into gRPC metadata: lower-case keys of
// the characters gRPC allows; a "-bin" key's value is base64, sent as bytes.
// Host becomes the :authority (returned apart); HTTP/2 pseudo and
// connection headers are refused.
func grpcMetadata(h http.Header) (md metadata.MD, authority string, err error) {
	md = metadata.MD{}
	for name, vs := range h {
		k := strings.ToLower(name)
		switch {
		case k == "host":
			if len(vs) > 0 {
				authority = vs[len(vs)-1]
			}
			continue
		case k == "" || strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, ":"):
			return nil, "", fmt.Errorf("%q: reserved for gRPC itself", name)
		case k == "connection" || k == "te" || k == "content-type" || k == "transfer-encoding" || k == "upgrade" || k == "keep-alive":
			return nil, "", fmt.Errorf("%q: a connection header gRPC sets itself", name)
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return nil, "", fmt.Errorf("%q: gRPC metadata keys are a-z, 0-9, '-', '_' and '.'", name)
			}
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					if b, err = base64.RawStdEncoding.DecodeString(v); err != nil {
						return nil, "", fmt.Errorf("%q: a -bin value must be base64: %w", name, err)
					}
				}
				md.Append(k, string(b))
				continue
			}
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < 0x20 || c > 0x7e {
					return nil, "", fmt.Errorf("%q: value has a byte 0x%02x that is not printable ASCII (use a -bin key for bytes)", name, c)
				}
			}
			md.Append(k, v)
		}
	}
	return md, authority, nil
}

// encodeRequest turns the JSON of --data into the wire bytes of a message
// of type md, once for the whole run. Empty data is the empty message.
func encodeRequest(md protoreflect.MessageDescriptor, data []byte) ([]byte, error) {
	msg := dynamicpb.NewMessage(md)
	if len(strings.TrimSpace(string(data))) > 0 {
		if err := (protojson.UnmarshalOptions{}).Unmarshal(data, msg); err != nil {
			return nil, fmt.Errorf("not a JSON %s: %w", md.FullName(), err)
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", md.FullName(), err)
	}
	return b, nil
}

// resolveMethod finds the method's descriptor: in ProtosetFiles or
// ProtoFiles when given, else among the services compiled into kaload,
// else by asking the server (reflection, over cc).
func resolveMethod(ctx context.Context, c *Config, cc grpc.ClientConnInterface, service, method string) (protoreflect.MethodDescriptor, error) {
	find := func(d protoreflect.Descriptor, where string) (protoreflect.MethodDescriptor, error) {
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("%s in %s is not a service", service, where)
		}
		m := sd.Methods().ByName(protoreflect.Name(method))
		if m == nil {
			return nil, fmt.Errorf("service %s in %s has no method %s", service, where, method)
		}
		return m, nil
	}
	switch {
	case len(c.ProtosetFiles) > 0:
		files := &protoregistry.Files{}
		for _, path := range c.ProtosetFiles {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, field.Errorf("ProtosetFiles", "%w", err)
			}
			var set descriptorpb.FileDescriptorSet
			if err := proto.Unmarshal(b, &set); err != nil {
				return nil, field.Errorf("ProtosetFiles", "%s: not a FileDescriptorSet: %w", path, err)
			}
			fs, err := protodesc.NewFiles(&set)
			if err != nil {
				return nil, field.Errorf("ProtosetFiles", "%s: %w", path, err)
			}
			var rerr error
			fs.RangeFiles(func(f protoreflect.FileDescriptor) bool {
				if _, err := files.FindFileByPath(f.Path()); err == nil {
					return true // the same file in two protosets
				}
				rerr = files.RegisterFile(f)
				return rerr == nil
			})
			if rerr != nil {
				return nil, field.Errorf("ProtosetFiles", "%s: %w", path, rerr)
			}
		}
		d, err := files.FindDescriptorByName(protoreflect.FullName(service))
		if err != nil {
			return nil, field.Errorf("ProtosetFiles", "service %s: %w", service, err)
		}
		return find(d, "the protoset")
	case len(c.ProtoFiles) > 0:
		p := protoparse.Parser{ImportPaths: c.ImportPaths}
		fds, err := p.ParseFiles(c.ProtoFiles...)
		if err != nil {
			return nil, field.Errorf("ProtoFiles", "%w", err)
		}
		for _, fd := range fds {
			if sd := fd.FindService(service); sd != nil {
				return find(sd.UnwrapService(), fd.GetName())
			}
		}
		return nil, field.Errorf("ProtoFiles", "no service %s in %s", service, strings.Join(c.ProtoFiles, ", "))
	}
	if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service)); err == nil {
		return find(d, "kaload")
	}
	rc := grpcreflect.NewClientAuto(ctx, cc)
	defer rc.Reset()
	sd, err := rc.ResolveService(service)
	if err != nil {
		return nil, field.Errorf("Call", "service %s by server reflection (or describe it with ProtoFiles or ProtosetFiles): %w", service, err)
	}
	return find(sd.UnwrapService(), "the server's reflection")
}
