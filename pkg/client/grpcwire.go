package client

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// gRPC over the HTTP/2 core: the request's header fields and message
// frame, and the answer's status as grpc-go's client would report it.

// grpcFields are a unary call's request header fields, in the order sent.
func grpcFields(g *grpcRun, tls bool, authority string) []h2Field {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	f := []h2Field{{":method", "POST"}, {":scheme", scheme}, {":path", g.method}, {":authority", authority},
		{"content-type", "application/grpc"}, {"user-agent", "kaload"}, {"te", "trailers"}}
	// grpc-timeout is not sent: the client ends an RPC at its Timeout
	// itself (RST_STREAM), and the header makes grpc-go's server arm a
	// timer per RPC.
	for k, vs := range g.md {
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			f = append(f, h2Field{k, v})
		}
	}
	return f
}

// grpcFrame is msg as one length-prefixed, uncompressed gRPC message.
func grpcFrame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// grpcOutcome is the status of an ended stream, with grpc-go's codes for
// what is not a grpc-status (its http2_client and http_util).
func grpcOutcome(s *h2Stream) (codes.Code, string) {
	switch {
	case s.err != "":
		return codes.Code(s.errCode), s.err
	case !s.headers:
		return codes.Internal, "server closed the stream without sending headers"
	case s.status != 200 || !s.grpc.ctype:
		return httpGRPCCode(s.status, s.grpc.ctype)
	case !s.trailers:
		return codes.Internal, "server closed the stream without sending trailers"
	case s.grpc.status == -1:
		return codes.Unknown, "malformed header: missing grpc-status"
	case s.grpc.status == -2:
		return codes.Internal, "transport: malformed grpc-status"
	case s.grpc.status == 0 && s.grpc.compressed && !s.grpc.encoding:
		return codes.Internal, "grpc: compressed flag set with identity or empty encoding"
	}
	return codes.Code(s.grpc.status), s.grpc.message
}

// httpGRPCCode maps an answer that is not gRPC's (another HTTP status, or
// another content type) as grpc-go's HTTPStatusConvTab does.
func httpGRPCCode(status int, grpcType bool) (codes.Code, string) {
	msg := "unexpected HTTP status code received from server: " + strconv.Itoa(status)
	if status == 200 && !grpcType {
		return codes.Unknown, "transport: received unexpected content-type"
	}
	switch status {
	case 400:
		return codes.Internal, msg
	case 401:
		return codes.Unauthenticated, msg
	case 403:
		return codes.PermissionDenied, msg
	case 404:
		return codes.Unimplemented, msg
	case 429, 502, 503, 504:
		return codes.Unavailable, msg
	}
	return codes.Unknown, msg
}

// rstGRPCCode maps an RST_STREAM error code as grpc-go's http2ErrConvTab.
func rstGRPCCode(code uint32) uint16 {
	switch code {
	case 0x3, 0xb: // FLOW_CONTROL_ERROR, ENHANCE_YOUR_CALM
		return uint16(codes.ResourceExhausted)
	case 0x7: // REFUSED_STREAM
		return uint16(codes.Unavailable)
	case 0x8: // CANCEL
		return uint16(codes.Canceled)
	case 0xc: // INADEQUATE_SECURITY
		return uint16(codes.PermissionDenied)
	}
	return uint16(codes.Internal)
}

// grpcErrText is the error text grpc-go's status errors have.
func grpcErrText(c codes.Code, msg string) string {
	return "rpc error: code = " + c.String() + " desc = " + msg
}

// parseGRPCStatus reads grpc-status: -2 when it is not a number.
func parseGRPCStatus(v string) int {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > 1<<31-1 {
		return -2
	}
	return int(n)
}

// isGRPCContentType: application/grpc, or application/grpc+FORMAT or ;params.
func isGRPCContentType(v string) bool {
	const base = "application/grpc"
	if len(v) < len(base) || !strings.EqualFold(v[:len(base)], base) {
		return false
	}
	return len(v) == len(base) || v[len(base)] == '+' || v[len(base)] == ';'
}

// decodeGRPCMessage undoes grpc-message's percent-encoding; a malformed
// escape is kept as it is (as grpc-go does).
func decodeGRPCMessage(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			if n, err := strconv.ParseUint(v[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
