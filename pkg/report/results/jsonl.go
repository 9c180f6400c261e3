package results

// The JSON Lines results file, version 5 (readers accept 1, which had no
// "kind" or "close_code", 2, which had no event lines, 3, which had no
// "grpc_code", and 4, which had no "delay_ns" and no trailer "unsent"): one
// JSON object per line.
//
//	{"kaload_results":5,"header":{...Header...}}
//	{"seq":0,"start_ns":0,"delay_ns":1200,"latency_ns":812345,"status":200,"backend":"pod-a","conn":1,"conn_req":1,"bytes":64,"server_total":17}
//	{"event":{"t_ns":2500000000,"kind":"pod.ready","object":"pod/web-1","detail":"ip=10.0.0.7"}}
//	...
//	{"kaload_trailer":{"records":N,"end":"2026-01-02T15:04:05.123Z","unsent":0}}
//
// Result fields that are empty are left out (server_total when it is -1,
// close when it is CloseNone, kind for requests, close_code, grpc_code and
// delay_ns when 0; grpc_code is the number of a gRPC status code), and so
// is the trailer's unsent when not counted; close
// and kind are names ("kind":"socket"). A last line
// without its newline was cut short and is not returned.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kaload/kaload/pkg/client"
)

const (
	jsonlVersion       = 5
	jsonlEventsVersion = 3 // the first version with event lines
)

func appendJSONLResult(b []byte, r *client.Result) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"start_ns":`...)
	b = strconv.AppendInt(b, int64(r.Start), 10)
	if r.Delay != 0 {
		b = append(b, `,"delay_ns":`...)
		b = strconv.AppendInt(b, int64(r.Delay), 10)
	}
	b = append(b, `,"latency_ns":`...)
	b = strconv.AppendInt(b, int64(r.Latency), 10)
	if r.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	if r.Backend != "" {
		b = append(b, `,"backend":`...)
		b = appendJSONString(b, clipString(r.Backend))
	}
	if r.Conn != 0 {
		b = append(b, `,"conn":`...)
		b = strconv.AppendUint(b, r.Conn, 10)
	}
	if r.ConnReq != 0 {
		b = append(b, `,"conn_req":`...)
		b = strconv.AppendUint(b, uint64(r.ConnReq), 10)
	}
	if r.Close != client.CloseNone {
		b = append(b, `,"close":`...)
		b = appendJSONString(b, r.Close.String())
	}
	if r.Bytes != 0 {
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, r.Bytes, 10)
	}
	if r.ServerTotal != -1 {
		b = append(b, `,"server_total":`...)
		b = strconv.AppendInt(b, r.ServerTotal, 10)
	}
	if r.Err != "" {
		b = append(b, `,"err":`...)
		b = appendJSONString(b, clipString(r.Err))
	}
	if r.Kind != client.KindRequest {
		b = append(b, `,"kind":`...)
		b = appendJSONString(b, r.Kind.String())
	}
	if r.CloseCode != 0 {
		b = append(b, `,"close_code":`...)
		b = strconv.AppendUint(b, uint64(r.CloseCode), 10)
	}
	if r.GRPCCode != 0 {
		b = append(b, `,"grpc_code":`...)
		b = strconv.AppendUint(b, uint64(r.GRPCCode), 10)
	}
	return append(b, "}\n"...)
}

func appendJSONLEvent(b []byte, e *Event) []byte {
	b = append(b, `{"event":{"t_ns":`...)
	b = strconv.AppendInt(b, int64(e.T), 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, clipString(e.Kind))
	if e.Object != "" {
		b = append(b, `,"object":`...)
		b = appendJSONString(b, clipString(e.Object))
	}
	if e.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, clipString(e.Detail))
	}
	return append(b, "}}\n"...)
}

func appendJSONLTrailer(b []byte, n int64, end time.Time, unsent int64) []byte {
	b = append(b, `{"kaload_trailer":{"records":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"end":"`...)
	b = end.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if unsent >= 0 {
		b = append(b, `,"unsent":`...)
		b = strconv.AppendInt(b, unsent, 10)
	}
	return append(b, "}}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does, without allocating:
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

type jsonlDecoder struct {
	version     uint64 // the file's format version
	line        int    // lines read
	off         int64  // bytes consumed
	buf         []byte
	strs        map[string]string // interned backends, errors and close reasons
	internBytes int               // bytes of the strings in strs
}

type jsonlHeaderLine struct {
	Version *uint64         `json:"kaload_results"`
	Header  json.RawMessage `json:"header"`
}

type jsonlTrailer struct {
	Records *int64    `json:"records"`
	End     time.Time `json:"end"`
	Unsent  *int64    `json:"unsent"`
}

type jsonlRecord struct {
	Seq         uint64        `json:"seq"`
	StartNS     int64         `json:"start_ns"`
	DelayNS     int64         `json:"delay_ns"`
	LatencyNS   int64         `json:"latency_ns"`
	Status      int           `json:"status"`
	Backend     string        `json:"backend"`
	Conn        uint64        `json:"conn"`
	ConnReq     uint32        `json:"conn_req"`
	Close       string        `json:"close"`
	Bytes       int64         `json:"bytes"`
	ServerTotal *int64        `json:"server_total"`
	Err         string        `json:"err"`
	Kind        string        `json:"kind"`
	CloseCode   uint16        `json:"close_code"`
	GRPCCode    uint16        `json:"grpc_code"`
	Trailer     *jsonlTrailer `json:"kaload_trailer"`
	Event       *jsonlEvent   `json:"event"`
	Version     *uint64       `json:"kaload_results"`
}

type jsonlEvent struct {
	TNS    *int64 `json:"t_ns"`
	Kind   string `json:"kind"`
	Object string `json:"object"`
	Detail string `json:"detail"`
}

// readLine returns the next line without its newline; complete is false
// when the file ended first. The line is valid until the next call.
func (r *Reader) readLine() (line []byte, complete bool, err error) {
	d := &r.jl
	d.buf = d.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		d.off += int64(len(chunk))
		if err == bufio.ErrBufferFull {
			d.buf = append(d.buf, chunk...)
			if len(d.buf) > maxLineLen {
				return nil, false, r.corruptLine(d.line+1, fmt.Errorf("line longer than %d bytes", maxLineLen))
			}
			continue
		}
		if len(d.buf) > 0 {
			d.buf = append(d.buf, chunk...)
			chunk = d.buf
		}
		switch err {
		case nil:
			d.line++
			return chunk[:len(chunk)-1], true, nil
		case io.EOF:
			return chunk, false, nil
		default:
			return nil, false, fmt.Errorf("%s: read: %w", r.name(), err)
		}
	}
}

func (r *Reader) readJSONLHeader() error {
	line, complete, err := r.readLine()
	if err != nil {
		return err
	}
	var h jsonlHeaderLine
	if err := json.Unmarshal(line, &h); err != nil {
		if !complete {
			return r.truncated(r.jl.off)
		}
		return fmt.Errorf("%s: not a kaload results file (line 1: %v)", r.name(), err)
	}
	if h.Version == nil {
		return fmt.Errorf("%s: not a kaload results file (line 1 has no \"kaload_results\" version)", r.name())
	}
	if *h.Version > jsonlVersion {
		return newerVersionError(r.name(), *h.Version, jsonlVersion)
	}
	if *h.Version == 0 {
		return r.corruptLine(1, errors.New("format version 0"))
	}
	if !complete {
		return r.truncated(r.jl.off)
	}
	if len(h.Header) == 0 {
		return r.corruptLine(1, errors.New(`no "header" object`))
	}
	if err := json.Unmarshal(h.Header, &r.header); err != nil {
		return r.corruptLine(1, fmt.Errorf("header: %w", err))
	}
	r.jl.version = *h.Version
	return nil
}

func (r *Reader) readJSONL(res *client.Result) error {
	for {
		line, complete, err := r.readLine()
		if err != nil {
			return err
		}
		if !complete {
			return r.truncated(r.jl.off)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue // blank lines are harmless
		}
		n := r.jl.line
		if line[0] != '{' {
			return r.corruptLine(n, errors.New("not a JSON object"))
		}
		if r.jl.fastRecord(line, res) {
			return nil
		}
		trailer, ev, err := slowRecord(line, res)
		if err != nil {
			return r.corruptLine(n, err)
		}
		if trailer != nil {
			return r.jsonlTrailer(n, trailer)
		}
		if ev != nil {
			if err := r.jsonlEvent(ev); err != nil {
				return r.corruptLine(n, err)
			}
			continue
		}
		return nil
	}
}

// slowRecord decodes any line encoding/json accepts: a record into res, an
// event or the trailer.
func slowRecord(line []byte, res *client.Result) (*jsonlTrailer, *jsonlEvent, error) {
	var rec jsonlRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, nil, err
	}
	if rec.Version != nil {
		return nil, nil, errors.New("a second header line")
	}
	if rec.Trailer != nil {
		return rec.Trailer, nil, nil
	}
	if rec.Event != nil {
		return nil, rec.Event, nil
	}
	reason, err := client.ParseCloseReason(rec.Close)
	if err != nil {
		return nil, nil, err
	}
	kind, err := client.ParseKind(rec.Kind)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRecordStrings(rec.Backend, rec.Err); err != nil {
		return nil, nil, err
	}
	if err := checkTimes(time.Duration(rec.StartNS), time.Duration(rec.DelayNS), time.Duration(rec.LatencyNS)); err != nil {
		return nil, nil, err
	}
	total := int64(-1)
	if rec.ServerTotal != nil {
		total = *rec.ServerTotal
	}
	*res = client.Result{
		Seq: rec.Seq, Start: time.Duration(rec.StartNS), Delay: time.Duration(rec.DelayNS), Latency: time.Duration(rec.LatencyNS),
		Status: rec.Status, Backend: rec.Backend, Conn: rec.Conn, ConnReq: rec.ConnReq,
		Close: reason, Bytes: rec.Bytes, ServerTotal: total, Err: rec.Err,
		Kind: kind, CloseCode: rec.CloseCode, GRPCCode: rec.GRPCCode,
	}
	return nil, nil, nil
}

// jsonlEvent keeps an event line's event.
func (r *Reader) jsonlEvent(e *jsonlEvent) error {
	switch {
	case r.jl.version < jsonlEventsVersion:
		return fmt.Errorf("an event line in a version %d file", r.jl.version)
	case e.TNS == nil:
		return errors.New(`event without "t_ns"`)
	case e.Kind == "":
		return errors.New(`event without "kind"`)
	case len(e.Kind) > maxStringLen || len(e.Object) > maxStringLen || len(e.Detail) > maxStringLen:
		return fmt.Errorf("event string exceeds the limit of %d bytes", maxStringLen)
	case len(r.events) >= maxEvents:
		return fmt.Errorf("more than %d events", maxEvents)
	}
	r.events = append(r.events, Event{T: time.Duration(*e.TNS), Kind: e.Kind, Object: e.Object, Detail: e.Detail})
	return nil
}

func (r *Reader) jsonlTrailer(line int, t *jsonlTrailer) error {
	if t.Records == nil {
		return r.corruptLine(line, errors.New("trailer without a record count"))
	}
	if *t.Records != r.n {
		return r.corruptLine(line, fmt.Errorf("trailer counts %d records but the file holds %d", *t.Records, r.n))
	}
	for {
		rest, complete, err := r.readLine()
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			n := r.jl.line
			if !complete {
				n++
			}
			return r.corruptLine(n, errors.New("data after the trailer"))
		}
		if _, err := r.br.Peek(1); err != nil {
			break
		}
	}
	unsent := int64(-1)
	if t.Unsent != nil {
		if *t.Unsent < 0 {
			return r.corruptLine(line, fmt.Errorf("trailer counts %d unsent requests", *t.Unsent))
		}
		unsent = *t.Unsent
	}
	r.trailer = Trailer{Records: *t.Records, End: t.End, Unsent: unsent}
	r.hasTrailer = true
	return io.EOF
}

// checkRecordStrings applies the binary form's limit to JSON Lines: the
// Writer never writes longer strings, and a 15 MB backend name in a crafted
// file cost 518 MB of RSS and 204 MB of report.
func checkRecordStrings(backend, errText string) error {
	if len(backend) > maxStringLen {
		return fmt.Errorf("backend name of %d bytes exceeds the limit of %d", len(backend), maxStringLen)
	}
	if len(errText) > maxStringLen {
		return fmt.Errorf("error text of %d bytes exceeds the limit of %d", len(errText), maxStringLen)
	}
	return nil
}
