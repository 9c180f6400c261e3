package client

import (
	"fmt"
	"time"
)

// CloseReason says why a connection ended after a request, if it did.
type CloseReason uint8

const (
	CloseNone        CloseReason = iota // the connection stayed open
	CloseServer                         // the server answered "Connection: close" (HTTP/1.1)
	CloseGoAway                         // the server sent HTTP/2 GOAWAY
	CloseEOF                            // the server closed an idle connection silently
	CloseError                          // a transport error (reset, timeout, malformed response)
	CloseClientLimit                    // the client's own --max-requests-per-conn
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{"", "server-close", "goaway", "eof", "error", "client-limit"}

// String returns the reason's name as it appears in reports and JSON ("" for CloseNone).
func (r CloseReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ParseCloseReason is the inverse of String.
func ParseCloseReason(s string) (CloseReason, error) {
	for i, n := range closeReasonNames {
		if n == s {
			return CloseReason(i), nil
		}
	}
	return 0, fmt.Errorf("unknown close reason %q", s)
}

// CloseReasons lists every reason other than CloseNone, in order.
func CloseReasons() []CloseReason {
	rs := make([]CloseReason, 0, numCloseReasons-1)
	for r := CloseServer; r < numCloseReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Kind says what a Result stands for.
type Kind uint8

const (
	KindRequest Kind = iota // a request, RPC or WebSocket message round trip
	// KindSocket is one WebSocket's (or gRPC server stream's) life: Start is when it opened, Latency
	// how long it was held, Close and CloseCode how it ended (CloseNone when
	// the run ended with it open). It is not a request: reports count
	// sockets with it, never requests.
	KindSocket
	numKinds
)

var kindNames = [numKinds]string{"", "socket"}

// String returns the kind's name as it appears in JSON ("" for KindRequest).
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of String.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown record kind %q", s)
}

// Kinds lists every kind, KindRequest first.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// Result is what the engine records for every request that ended, answered or not.
type Result struct {
	Seq   uint64        // 0-based, in the order requests were started
	Start time.Duration // offset from the run's start; the intended send time under --rate
	// Delay is how long the request waited past Start before it was sent:
	// under --rate, for a free connection slot. Start+Delay is when it was
	// sent; always 0 in the closed model.
	Delay       time.Duration
	Latency     time.Duration // from Start to the end of the response body (or the error)
	Status      int           // HTTP status; 0 when no response arrived
	Backend     string        // the backend header's value, else the remote address
	Conn        uint64        // connection id, 1-based, unique within a run
	ConnReq     uint32        // 1-based position of the request on its connection
	Close       CloseReason   // why the connection ended after this request, if it did
	Bytes       int64         // response body bytes read
	ServerTotal int64         // the server's Total-Request header; -1 when absent
	Err         string        // empty on success
	Kind        Kind          // KindRequest for requests and messages
	// CloseCode is the WebSocket close status the connection ended with
	// (1012 service restart, 1001 going away, 1006 abnormal: no close
	// frame); 0 when no WebSocket closed after this record.
	CloseCode uint16
	// GRPCCode is the gRPC status code (google.golang.org/grpc/codes) of an
	// RPC that did not end OK; 0 for OK and for other protocols.
	GRPCCode uint16
}

// Failed reports whether the request counts as an error: a transport error,
// or a status other than 2xx and 3xx.
func (r *Result) Failed() bool {
	if r.Status == 101 && r.Err == "" {
		return false // a WebSocket message: its exchange is the 101 upgrade
	}
	if r.Kind == KindSocket {
		return r.Err != "" // a handshake that failed; an opened socket's failures are its messages'
	}
	return r.Err != "" || r.GRPCCode != 0 || r.Status < 200 || r.Status >= 400
}
