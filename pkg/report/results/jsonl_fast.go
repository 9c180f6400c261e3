package results

import (
	"bytes"
	"math"
	"time"
	"unicode/utf8"

	"github.com/kaload/kaload/pkg/client"
)

// The fast path of the JSON Lines reader: it decodes the lines the Writer
// makes (compact, integers, strings without escapes) without reflection or
// allocation, interning strings. Anything else (whitespace, escapes, null,
// floats, unknown or repeated keys) falls back to encoding/json, so both
// paths accept exactly the same files with the same meaning; FuzzJSONLFast
// holds them to that.

const (
	keySeq = iota
	keyStart
	keyLatency
	keyStatus
	keyBackend
	keyConn
	keyConnReq
	keyClose
	keyBytes
	keyServerTotal
	keyErr
	keyKind
	keyCloseCode
	keyGRPCCode
	keyDelay
)

// Distinct strings a JSON Lines reader keeps per file, and their bytes:
// 4096 names of 64 KiB would otherwise hold 256 MB.
const (
	maxInterned    = 4096
	maxInternBytes = 4 << 20
)

func jsonlKey(k []byte) int {
	switch string(k) {
	case "seq":
		return keySeq
	case "start_ns":
		return keyStart
	case "latency_ns":
		return keyLatency
	case "status":
		return keyStatus
	case "backend":
		return keyBackend
	case "conn":
		return keyConn
	case "conn_req":
		return keyConnReq
	case "close":
		return keyClose
	case "bytes":
		return keyBytes
	case "server_total":
		return keyServerTotal
	case "err":
		return keyErr
	case "kind":
		return keyKind
	case "close_code":
		return keyCloseCode
	case "grpc_code":
		return keyGRPCCode
	case "delay_ns":
		return keyDelay
	}
	return -1
}

func (d *jsonlDecoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.strs == nil {
		d.strs = make(map[string]string)
	}
	if len(d.strs) < maxInterned && d.internBytes+len(s) <= maxInternBytes {
		d.strs[s] = s
		d.internBytes += len(s)
	}
	return s
}

// fastRecord decodes line into res and reports whether it could; res is
// undefined when it could not.
func (d *jsonlDecoder) fastRecord(line []byte, res *client.Result) bool {
	n := len(line)
	if n < 2 || line[0] != '{' || line[n-1] != '}' || line[1] != '"' {
		return false
	}
	*res = client.Result{ServerTotal: -1}
	var seen uint32
	p := 1
	for {
		if line[p] != '"' {
			return false
		}
		end := bytes.IndexByte(line[p+1:], '"')
		if end < 0 {
			return false
		}
		k := jsonlKey(line[p+1 : p+1+end])
		p += end + 2
		if k < 0 || seen&(1<<k) != 0 || p >= n || line[p] != ':' {
			return false
		}
		seen |= 1 << k
		p++
		switch k {
		case keyBackend, keyClose, keyErr, keyKind:
			s, np, ok := fastString(line, p)
			if !ok || len(s) > maxStringLen {
				return false // the slow path words the error
			}
			p = np
			switch k {
			case keyBackend:
				res.Backend = d.intern(s)
			case keyErr:
				res.Err = d.intern(s)
			case keyClose:
				c, err := client.ParseCloseReason(d.intern(s))
				if err != nil {
					return false // the slow path words the error
				}
				res.Close = c
			case keyKind:
				kd, err := client.ParseKind(d.intern(s))
				if err != nil {
					return false
				}
				res.Kind = kd
			}
		default:
			mag, neg, np, ok := fastInt(line, p)
			if !ok {
				return false
			}
			p = np
			switch k {
			case keySeq, keyConn, keyConnReq, keyCloseCode, keyGRPCCode:
				if neg || k == keyConnReq && mag > math.MaxUint32 || (k == keyCloseCode || k == keyGRPCCode) && mag > math.MaxUint16 {
					return false
				}
				switch k {
				case keySeq:
					res.Seq = mag
				case keyConn:
					res.Conn = mag
				case keyCloseCode:
					res.CloseCode = uint16(mag)
				case keyGRPCCode:
					res.GRPCCode = uint16(mag)
				default:
					res.ConnReq = uint32(mag)
				}
			default:
				v, ok := signed(mag, neg)
				if !ok || k == keyStatus && (v < math.MinInt || v > math.MaxInt) {
					return false
				}
				switch k {
				case keyStart:
					res.Start = time.Duration(v)
				case keyDelay:
					res.Delay = time.Duration(v)
				case keyLatency:
					res.Latency = time.Duration(v)
				case keyStatus:
					res.Status = int(v)
				case keyBytes:
					res.Bytes = v
				case keyServerTotal:
					res.ServerTotal = v
				}
			}
		}
		if p >= n {
			return false
		}
		if line[p] == '}' {
			return p == n-1 && checkTimes(res.Start, res.Delay, res.Latency) == nil
		}
		if line[p] != ',' {
			return false
		}
		p++
		if p >= n {
			return false
		}
	}
}

// fastString reads a JSON string at line[p] that needs no unescaping.
func fastString(line []byte, p int) (s []byte, next int, ok bool) {
	if p >= len(line) || line[p] != '"' {
		return nil, 0, false
	}
	ascii := true
	for i := p + 1; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			s = line[p+1 : i]
			if !ascii && !utf8.Valid(s) {
				return nil, 0, false
			}
			return s, i + 1, true
		case c < 0x20 || c == '\\':
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// fastInt reads a JSON integer at line[p]: its magnitude and sign. It
// refuses "-0", fractions, exponents and anything above MaxUint64.
func fastInt(line []byte, p int) (mag uint64, neg bool, next int, ok bool) {
	if p < len(line) && line[p] == '-' {
		neg = true
		p++
	}
	start := p
	for ; p < len(line); p++ {
		c := line[p]
		if c < '0' || c > '9' {
			break
		}
		d := uint64(c - '0')
		if mag > (math.MaxUint64-d)/10 {
			return 0, false, 0, false
		}
		mag = mag*10 + d
	}
	digits := p - start
	if digits == 0 || digits > 1 && line[start] == '0' || neg && mag == 0 {
		return 0, false, 0, false
	}
	if p < len(line) && (line[p] == '.' || line[p] == 'e' || line[p] == 'E') {
		return 0, false, 0, false
	}
	return mag, neg, p, true
}

func signed(mag uint64, neg bool) (int64, bool) {
	if !neg {
		return int64(mag), mag <= math.MaxInt64
	}
	if mag > 1<<63 {
		return 0, false
	}
	return -int64(mag), true // -(1<<63) wraps to itself, which is right
}
