package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kaload/kaload/pkg/client"
)

// Header is the run's metadata, written once at the start of every results file.
type Header struct {
	Kaload      string            `json:"kaload"`          // kaload version
	Label       string            `json:"label,omitempty"` // run label, e.g. a Kubernetes Job index, so merged reports can tell hammers apart
	URL         string            `json:"url"`
	Start       time.Time         `json:"start"`          // wall-clock start of the run; Result.Start offsets are relative to it
	Args        []string          `json:"args,omitempty"` // the command line
	Connections int               `json:"connections"`
	Rate        float64           `json:"rate"`
	Duration    time.Duration     `json:"duration_ns"`
	Requests    int64             `json:"requests"`
	Meta        map[string]string `json:"meta,omitempty"` // anything else (flags)
}

// Trailer closes a complete results file; a file without one was cut short.
type Trailer struct {
	Records int64     // records in the file
	End     time.Time // wall-clock time the writer was closed
	// Unsent counts the requests of an open-model run (--rate) that were due
	// but never sent (client.Stats.Unsent); -1 when not counted: a
	// closed-model run, or a file from a kaload that did not count them.
	Unsent int64
}

// Format is the form of a results file.
type Format int

const (
	FormatBinary Format = iota // compact, the default
	FormatJSONL                // one JSON object per line, for jq
)

func (f Format) String() string {
	switch f {
	case FormatBinary:
		return "binary"
	case FormatJSONL:
		return "jsonl"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// FormatForPath picks the form from a file name: ".jsonl" is JSON Lines,
// anything else (including "-") is binary.
func FormatForPath(path string) Format {
	if strings.EqualFold(filepath.Ext(path), ".jsonl") {
		return FormatJSONL
	}
	return FormatBinary
}

// ErrTruncated is wrapped by the error Reader.Read returns for a file cut
// short (e.g. by a crash). Every whole record before the cut was returned,
// so callers print it as a warning.
var ErrTruncated = errors.New("results file is truncated")

// CorruptError reports a results file that cannot be decoded.
type CorruptError struct {
	Path   string // "" when the reader was not opened by name
	Offset int64  // byte offset of the bad block or record (binary form)
	Line   int    // 1-based line number (JSON Lines form), 0 for binary
	Err    error
}

func (e *CorruptError) Error() string {
	prefix := ""
	if e.Path != "" {
		prefix = e.Path + ": "
	}
	if e.Line > 0 {
		return fmt.Sprintf("%scorrupt results file at line %d: %v", prefix, e.Line, e.Err)
	}
	return fmt.Sprintf("%scorrupt results file at byte %d: %v", prefix, e.Offset, e.Err)
}

// truncatedError says where a file was cut; it is ErrTruncated for errors.Is.
type truncatedError struct {
	path    string
	offset  int64
	records int64
}

func (e *truncatedError) Error() string {
	if e.path == "" {
		return fmt.Sprintf("results file truncated at byte %d after %d records", e.offset, e.records)
	}
	return fmt.Sprintf("%s: results file truncated at byte %d after %d records", e.path, e.offset, e.records)
}

func (e *truncatedError) Is(target error) bool { return target == ErrTruncated }

func (e *CorruptError) Unwrap() error { return e.Err }

// Limits that keep a hostile or corrupt file from making the reader
// allocate without bound.
const (
	maxHeaderLen = 16 << 20
	maxStringLen = 64 << 10 // backend names and error texts; longer ones are cut by the writer
	// maxOffset bounds a record's start offset and latency. A longer run is
	// not one kaload makes; a larger value is a corrupt or crafted file
	// (2^62 ns turned duration_seconds into 4.6e9), and a negative one was
	// dropped by the report without a word.
	maxOffset  = 366 * 24 * time.Hour
	maxLineLen = 16 << 20
)

// flushInterval bounds how stale a results file on disk may be while a run goes on.
const flushInterval = time.Second

// Writer streams Results to a results file. It is safe for concurrent use
// and flushes buffered records at least once a second on its own.
type Writer struct {
	mu     sync.Mutex
	out    io.Writer
	closer io.Closer // set when the Writer owns the file
	format Format
	buf    []byte // pending output; binary: starts with room for a block header
	n      int64
	unsent int64 // for the trailer; -1 until SetUnsent
	events int64
	err    error // sticky: the first write error
	closed bool
	bin    binEncoder
	now    func() time.Time // the trailer's clock; tests fix it for golden files

	done chan struct{}
	wg   sync.WaitGroup
}

// NewWriter writes the header to w at once and returns a Writer for the
// records. Close must be called: it stops the Writer's flushing goroutine.
func NewWriter(w io.Writer, f Format, h Header) (*Writer, error) {
	if f != FormatBinary && f != FormatJSONL {
		return nil, fmt.Errorf("unknown results format %d", int(f))
	}
	h.Start = h.Start.Round(0) // the monotonic reading means nothing in a file
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false) // URLs keep their '&' readable for jq users
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("encode results header: %w", err)
	}
	hj := bytes.TrimSuffix(hb.Bytes(), []byte("\n"))
	wr := &Writer{out: w, format: f, now: time.Now, unsent: -1, done: make(chan struct{})}
	var head []byte
	switch f {
	case FormatBinary:
		wr.bin.reset()
		head = appendBinaryHeader(nil, hj)
		wr.buf = make([]byte, blockHeaderLen, blockTarget+blockTarget/4)
	case FormatJSONL:
		head = append(head, `{"kaload_results":`...)
		head = fmt.Appendf(head, "%d", jsonlVersion)
		head = append(head, `,"header":`...)
		head = append(head, hj...)
		head = append(head, "}\n"...)
		wr.buf = make([]byte, 0, blockTarget+blockTarget/4)
	}
	if _, err := w.Write(head); err != nil {
		return nil, fmt.Errorf("write results header: %w", err)
	}
	wr.wg.Add(1)
	go wr.flushLoop()
	return wr, nil
}

// CreateFile creates (or truncates) path and writes the header; the form
// follows the name (FormatForPath). Close closes the file. "-" is rejected:
// writing to stdout is the caller's business (NewWriter on os.Stdout).
func CreateFile(path string, h Header) (*Writer, error) {
	if path == "-" {
		return nil, errors.New(`results file "-": pass standard output to NewWriter instead`)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create results file: %w", err)
	}
	w, err := NewWriter(f, FormatForPath(path), h)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w.closer = f
	return w, nil
}

func (w *Writer) flushLoop() {
	defer w.wg.Done()
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			w.mu.Lock()
			if !w.closed {
				w.flushLocked()
			}
			w.mu.Unlock()
		}
	}
}

// Write appends one result. Errors are sticky: once the underlying writer
// failed, every later call returns that error.
func (w *Writer) Write(r *client.Result) error {
	if int(r.Close) >= numCloseReasons {
		return fmt.Errorf("result %d: invalid close reason %d", r.Seq, uint8(r.Close))
	}
	if err := checkTimes(r.Start, r.Delay, r.Latency); err != nil {
		return fmt.Errorf("result %d: %w", r.Seq, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("results writer is closed")
	}
	if w.err != nil {
		return w.err
	}
	switch w.format {
	case FormatBinary:
		w.buf = w.bin.appendResult(w.buf, r)
		if len(w.buf)-blockHeaderLen >= blockTarget {
			w.flushLocked()
		}
	case FormatJSONL:
		w.buf = appendJSONLResult(w.buf, r)
		if len(w.buf) >= blockTarget {
			w.flushLocked()
		}
	}
	w.n++
	return w.err
}

// WriteEvent appends one event. Events and Results share the file's order
// but not its count: the trailer counts Results. Like Write, errors are sticky.
func (w *Writer) WriteEvent(e Event) error {
	if err := e.validate(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("results writer is closed")
	}
	if w.err != nil {
		return w.err
	}
	if w.events >= maxEvents {
		return fmt.Errorf("event %s %s: a results file holds at most %d events", e.Kind, e.Object, maxEvents)
	}
	switch w.format {
	case FormatBinary:
		w.buf = appendEvent(w.buf, &e)
		if len(w.buf)-blockHeaderLen >= blockTarget {
			w.flushLocked()
		}
	case FormatJSONL:
		w.buf = appendJSONLEvent(w.buf, &e)
		if len(w.buf) >= blockTarget {
			w.flushLocked()
		}
	}
	w.events++
	return w.err
}

// flushLocked writes what is pending; w.mu must be held.
func (w *Writer) flushLocked() {
	if w.err != nil {
		return
	}
	out := w.buf
	switch w.format {
	case FormatBinary:
		if len(w.buf) == blockHeaderLen {
			return
		}
		out = sealBlock(w.buf, blockRecords)
	case FormatJSONL:
		if len(w.buf) == 0 {
			return
		}
	}
	if _, err := w.out.Write(out); err != nil {
		w.err = fmt.Errorf("write results: %w", err)
	}
	if w.format == FormatBinary {
		w.buf = w.buf[:blockHeaderLen]
	} else {
		w.buf = w.buf[:0]
	}
}

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("results writer is closed")
	}
	w.flushLocked()
	return w.err
}

// Count returns how many records were written so far.
func (w *Writer) Count() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// SetUnsent records, for the trailer Close writes, how many requests of an
// open-model run were due but never sent (client.Stats.Unsent). Without it
// the trailer says they were not counted.
func (w *Writer) SetUnsent(n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unsent = max(n, -1)
}

// Close stops the flusher, writes the pending records and the trailer (record
// count, end time) and closes the file if the Writer owns it. A second Close
// returns an error.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("results writer is already closed")
	}
	w.closed = true
	close(w.done)
	w.mu.Unlock()
	w.wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	if w.err == nil {
		var t []byte
		end := w.now().Round(0)
		switch w.format {
		case FormatBinary:
			t = appendBinaryTrailer(w.buf[:blockHeaderLen], w.n, end, w.unsent)
		case FormatJSONL:
			t = appendJSONLTrailer(w.buf[:0], w.n, end, w.unsent)
		}
		if _, err := w.out.Write(t); err != nil {
			w.err = fmt.Errorf("write results trailer: %w", err)
		}
	}
	err := w.err
	if w.closer != nil {
		if cerr := w.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close results file: %w", cerr)
		}
	}
	return err
}

// Reader reads a results file of either form.
type Reader struct {
	path   string
	br     *bufio.Reader
	closer io.Closer
	format Format
	header Header

	trailer    Trailer
	hasTrailer bool
	n          int64 // records returned
	err        error // terminal: io.EOF, truncation or corruption
	events     []Event

	bin binDecoder
	jl  jsonlDecoder
}

// NewReader detects the form of r and reads the header.
func NewReader(r io.Reader) (*Reader, error) {
	return newReader(r, "")
}

// OpenFile opens a results file; errors name the file. Reader.Close closes it.
func OpenFile(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open results file: %w", err)
	}
	rd, err := newReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	rd.closer = f
	return rd, nil
}

func newReader(r io.Reader, path string) (*Reader, error) {
	rd := &Reader{path: path, br: bufio.NewReaderSize(r, 16<<10)}
	name := path
	if name == "" {
		name = "results file"
	}
	first, err := rd.br.Peek(len(binaryMagic))
	if len(first) == 0 {
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, fmt.Errorf("%s: empty file, not a kaload results file", name)
	}
	switch {
	case bytes.HasPrefix(first, []byte(binaryMagic)) || bytes.HasPrefix([]byte(binaryMagic), first):
		rd.format = FormatBinary
		err = rd.readBinaryHeader()
	case first[0] == '{':
		rd.format = FormatJSONL
		err = rd.readJSONLHeader()
	default:
		return nil, fmt.Errorf("%s: not a kaload results file", name)
	}
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// Header returns the run's metadata.
func (r *Reader) Header() Header { return r.header }

// Format returns the detected form of the file.
func (r *Reader) Format() Format { return r.format }

// Read decodes the next record into res. It returns io.EOF after the last
// record of a complete file, an error wrapping ErrTruncated for a file cut
// short, and a *CorruptError for a file that cannot be decoded. Strings in
// res are shared with the Reader's intern tables; they are immutable, so
// keeping them is safe.
func (r *Reader) Read(res *client.Result) error {
	// The common case, a record in the current block, without readBinary's
	// frame; anything else (a define, an event, the block's end, an error)
	// takes the general path, which decodes from where this one stopped.
	if r.err == nil && r.format == FormatBinary && r.bin.pos < len(r.bin.block) {
		if ok, _ := r.bin.next(res); ok {
			r.n++
			return nil
		}
	}
	if r.err != nil {
		return r.err
	}
	var err error
	if r.format == FormatBinary {
		err = r.readBinary(res)
	} else {
		err = r.readJSONL(res)
	}
	if err != nil {
		r.err = err
		return err
	}
	r.n++
	return nil
}

// Events returns the events read so far, in file order. Read passes over
// them, so after Read returned io.EOF (or a truncation) these are all the
// events of the file (at most a million: more is corruption).
func (r *Reader) Events() []Event { return r.events }

// Trailer returns the file's trailer; ok is false until Read returned io.EOF.
func (r *Reader) Trailer() (t Trailer, ok bool) { return r.trailer, r.hasTrailer }

// Close closes the file when the Reader was made by OpenFile.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	c := r.closer
	r.closer = nil
	return c.Close()
}

func (r *Reader) name() string {
	if r.path == "" {
		return "results file"
	}
	return r.path
}

func (r *Reader) truncated(off int64) error {
	return &truncatedError{path: r.path, offset: off, records: r.n}
}

func (r *Reader) corruptAt(off int64, format string, args ...any) error {
	return &CorruptError{Path: r.path, Offset: off, Err: fmt.Errorf(format, args...)}
}

func (r *Reader) corruptLine(line int, err error) error {
	return &CorruptError{Path: r.path, Line: line, Err: err}
}

func newerVersionError(name string, v, supported uint64) error {
	return fmt.Errorf("%s: results file format version %d is newer than this kaload reads (up to %d): upgrade kaload", name, v, supported)
}

// numCloseReasons is how many CloseReason values pkg/client defines.
var numCloseReasons = len(client.CloseReasons()) + 1

var numKinds = len(client.Kinds())

// checkTimes refuses offsets no run can have; readers and the Writer apply
// the same rule, so whatever is written reads back.
func checkTimes(start, delay, latency time.Duration) error {
	if start < 0 || start > maxOffset {
		return fmt.Errorf("start offset %d ns outside 0..%s", int64(start), maxOffset)
	}
	if delay < 0 || delay > maxOffset {
		return fmt.Errorf("send delay %d ns outside 0..%s", int64(delay), maxOffset)
	}
	if latency < 0 || latency > maxOffset {
		return fmt.Errorf("latency %d ns outside 0..%s", int64(latency), maxOffset)
	}
	return nil
}
