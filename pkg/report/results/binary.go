package results

// The binary results file, version 5 (version 1 had no extension item,
// version 2 no events, version 3 no gRPC code, version 4 no send delays and
// no unsent count; readers accept all five).
//
// All integers are little-endian; "uvarint" and "varint" are the encodings of
// encoding/binary (varint = zigzag + uvarint).
//
//	file    = magic version block('H') block('R')* block('T')
//	magic   = "KALOAD\x00"
//	version = one byte, 5
//	block   = kind:byte length:uint32 crc:uint32 payload:length bytes
//
// crc is CRC-32C (Castagnoli) over kind, length and payload, so any damaged
// byte is caught and reported with the block's offset. Blocks are at most
// a little over 64 KiB in practice (the writer seals one when it reaches
// 64 KiB and at every flush, at least once a second); readers accept up to
// 16 MiB. A crash leaves whole blocks plus perhaps part of one: the reader
// still decodes the whole records of that part, then reports the truncation.
//
//	'H' payload: the Header as one JSON object (the same as in JSON Lines).
//	'T' payload: uvarint record count, varint end time (Unix nanoseconds),
//	              varint unsent (version 5: requests of an open-model run
//	              due but never sent; -1 when not counted).
//	              A file without it was cut short; a count that does not
//	              match the records read, or any byte after it, is corruption.
//	'R' payload: a sequence of items; an item never spans two blocks:
//
//	0x01 slot:uvarint len:uvarint bytes   define backend name #slot
//	0x02 slot:uvarint len:uvarint bytes   define error text #slot
//	0x03 t:varint kind object detail      one Event (version 3); each string
//	                                      is len:uvarint bytes, not interned
//	0x80|flags ...                        one Result
//
// Backend names and error texts are interned: defined once, then referred to
// by slot. A writer holds at most 4096 slots of each kind and reuses them
// round-robin, so memory stays bounded however many distinct errors a run
// sees; a define for a used slot replaces its string.
//
// A Result is coded against the previous Result of the file (or against the
// previous one of its backend, for the server's counter), so a typical
// request costs 12-16 bytes:
//
//	[seq     varint  Seq-(prevSeq+1)]        if flags&0x01 (prevSeq starts at -1)
//	start    varint  Start-prevStart
//	latency  varint  Latency
//	[status  varint  Status]                  if flags&0x02, else prevStatus (starts at 200)
//	backend  uvarint slot
//	conn     varint  Conn-prevConn
//	connReq  uvarint ConnReq
//	[close   byte    CloseReason, not 0]      if flags&0x08, else CloseNone
//	[bytes   varint  Bytes]                   if flags&0x04, else prevBytes (starts at 0)
//	[total   varint  ServerTotal-prevTotal]   if flags&0x20, else -1; prevTotal is per backend
//	                                          slot, 0 when the slot is (re)defined
//	[err     uvarint slot]                    if flags&0x10, else ""
//	[ext     byte    bits]                    if flags&0x40 (version 2), then in order:
//	  [kind  byte    Kind, not 0]             if ext&0x01, else KindRequest
//	  [code  uvarint CloseCode, not 0]        if ext&0x02, else 0
//	  [grpc  uvarint GRPCCode, not 0]         if ext&0x04 (version 4), else 0
//	  [delay varint  Delay, not 0]            if ext&0x08 (version 5), else 0
//	                                          other ext bits are reserved and must be 0
//
// New fields go behind ext bits (and a version bump, so that an older
// reader says "upgrade" instead of "corrupt").

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kaload/kaload/pkg/client"
)

const (
	binaryMagic    = "KALOAD\x00"
	binaryVersion  = 5
	eventsVersion  = 3 // the first version with event items
	grpcVersion    = 4 // the first version with gRPC codes
	delayVersion   = 5 // the first with send delays and the trailer's unsent count
	blockHeaderLen = 9
	blockTarget    = 64 << 10 // the writer seals a block once it holds this much
	maxBlockLen    = 16 << 20
	internCap      = 4096    // slots a writer uses per string kind
	maxSlots       = 1 << 16 // slots a reader accepts per string kind

	blockHeader  = 'H'
	blockRecords = 'R'
	blockTrailer = 'T'

	tagBackend = 0x01
	tagErr     = 0x02
	tagEvent   = 0x03
	tagResult  = 0x80

	flagSeq    = 0x01
	flagStatus = 0x02
	flagBytes  = 0x04
	flagClose  = 0x08
	flagErr    = 0x10
	flagTotal  = 0x20
	flagExt    = 0x40

	extKind      = 0x01
	extCloseCode = 0x02
	extGRPCCode  = 0x04
	extDelay     = 0x08 // version 5
	extReserved  = ^byte(extKind | extCloseCode | extGRPCCode | extDelay)
)

// castagnoli is made on first use: made at init it cost every kaload
// command 0.12 ms and 9 KB (GODEBUG=inittrace=1), the slowest of its inits.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// blockCRC covers kind, length and payload of a block laid out in b.
func blockCRC(b []byte) uint32 {
	t := castagnoli()
	return crc32.Update(crc32.Update(0, t, b[:5]), t, b[blockHeaderLen:])
}

// sealBlock fills in the header of the block b (header room + payload).
func sealBlock(b []byte, kind byte) []byte {
	b[0] = kind
	binary.LittleEndian.PutUint32(b[1:5], uint32(len(b)-blockHeaderLen))
	binary.LittleEndian.PutUint32(b[5:9], blockCRC(b))
	return b
}

func appendBinaryHeader(dst, headerJSON []byte) []byte {
	dst = append(dst, binaryMagic...)
	dst = append(dst, binaryVersion)
	start := len(dst)
	dst = append(dst, make([]byte, blockHeaderLen)...)
	dst = append(dst, headerJSON...)
	sealBlock(dst[start:], blockHeader)
	return dst
}

// appendBinaryTrailer appends a sealed trailer block to b, which holds only
// the room for a block header.
func appendBinaryTrailer(b []byte, n int64, end time.Time, unsent int64) []byte {
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendVarint(b, end.UnixNano())
	b = binary.AppendVarint(b, unsent)
	return sealBlock(b, blockTrailer)
}

// interner assigns slots to strings, reusing slots round-robin when full.
type interner struct {
	index map[string]uint32
	slots []string
	next  int
}

func (in *interner) lookup(s string) (slot uint32, fresh bool) {
	if i, ok := in.index[s]; ok {
		return i, false
	}
	if in.index == nil {
		in.index = make(map[string]uint32)
	}
	if len(in.slots) < internCap {
		slot = uint32(len(in.slots))
		in.slots = append(in.slots, s)
	} else {
		slot = uint32(in.next)
		delete(in.index, in.slots[slot])
		in.slots[slot] = s
		in.next = (in.next + 1) % internCap
	}
	in.index[s] = slot
	return slot, true
}

// binEncoder holds the state a Result is coded against.
type binEncoder struct {
	prevSeq    uint64
	prevStart  time.Duration
	prevStatus int
	prevBytes  int64
	prevConn   uint64
	backends   interner
	errs       interner
	lastTotal  []int64 // by backend slot
}

func (e *binEncoder) reset() {
	*e = binEncoder{prevSeq: math.MaxUint64, prevStatus: 200}
}

// clipString cuts s to maxStringLen bytes at a rune boundary: a backend
// name or error text that long is a bug elsewhere, not worth failing a run.
func clipString(s string) string {
	if len(s) <= maxStringLen {
		return s
	}
	n := maxStringLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func appendDefine(b []byte, tag byte, slot uint32, s string) []byte {
	s = clipString(s)
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(slot))
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (e *binEncoder) appendResult(b []byte, r *client.Result) []byte {
	bslot, fresh := e.backends.lookup(r.Backend)
	if fresh {
		b = appendDefine(b, tagBackend, bslot, r.Backend)
		if int(bslot) == len(e.lastTotal) {
			e.lastTotal = append(e.lastTotal, 0)
		} else {
			e.lastTotal[bslot] = 0
		}
	}
	var eslot uint32
	flags := byte(tagResult)
	if r.Err != "" {
		eslot, fresh = e.errs.lookup(r.Err)
		if fresh {
			b = appendDefine(b, tagErr, eslot, r.Err)
		}
		flags |= flagErr
	}
	if r.Seq != e.prevSeq+1 {
		flags |= flagSeq
	}
	if r.Status != e.prevStatus {
		flags |= flagStatus
	}
	if r.Bytes != e.prevBytes {
		flags |= flagBytes
	}
	if r.Close != client.CloseNone {
		flags |= flagClose
	}
	if r.ServerTotal != -1 {
		flags |= flagTotal
	}
	var ext byte
	if r.Kind != client.KindRequest {
		ext |= extKind
	}
	if r.CloseCode != 0 {
		ext |= extCloseCode
	}
	if r.Delay != 0 {
		ext |= extDelay
	}
	if r.GRPCCode != 0 {
		ext |= extGRPCCode
	}
	if ext != 0 {
		flags |= flagExt
	}
	b = append(b, flags)
	if flags&flagSeq != 0 {
		b = binary.AppendVarint(b, int64(r.Seq-(e.prevSeq+1)))
	}
	b = binary.AppendVarint(b, int64(r.Start-e.prevStart))
	b = binary.AppendVarint(b, int64(r.Latency))
	if flags&flagStatus != 0 {
		b = binary.AppendVarint(b, int64(r.Status))
	}
	b = binary.AppendUvarint(b, uint64(bslot))
	b = binary.AppendVarint(b, int64(r.Conn-e.prevConn))
	b = binary.AppendUvarint(b, uint64(r.ConnReq))
	if flags&flagClose != 0 {
		b = append(b, byte(r.Close))
	}
	if flags&flagBytes != 0 {
		b = binary.AppendVarint(b, r.Bytes)
	}
	if flags&flagTotal != 0 {
		b = binary.AppendVarint(b, r.ServerTotal-e.lastTotal[bslot])
		e.lastTotal[bslot] = r.ServerTotal
	}
	if flags&flagErr != 0 {
		b = binary.AppendUvarint(b, uint64(eslot))
	}
	if ext != 0 {
		b = append(b, ext)
		if ext&extKind != 0 {
			b = append(b, byte(r.Kind))
		}
		if ext&extCloseCode != 0 {
			b = binary.AppendUvarint(b, uint64(r.CloseCode))
		}
		if ext&extGRPCCode != 0 {
			b = binary.AppendUvarint(b, uint64(r.GRPCCode))
		}
		if ext&extDelay != 0 {
			b = binary.AppendVarint(b, int64(r.Delay))
		}
	}
	e.prevSeq = r.Seq
	e.prevStart = r.Start
	e.prevStatus = r.Status
	e.prevBytes = r.Bytes
	e.prevConn = r.Conn
	return b
}

// binDecoder mirrors binEncoder on the reading side.
type binDecoder struct {
	hdr      [blockHeaderLen]byte
	block    []byte // payload of the current 'R' block
	pos      int
	partial  bool  // the file ended inside this block
	blockOff int64 // file offset of block[0]
	off      int64 // bytes consumed from the file

	prevSeq    uint64
	prevStart  time.Duration
	prevStatus int
	prevBytes  int64
	prevConn   uint64
	backends   []string
	lastTotal  []int64
	errs       []string
	version    byte     // the file's format version
	events     *[]Event // where event items go: the Reader's
}

// Sentinels of the item decoder; never shown to users as they are.
var (
	errShort    = errors.New("short item")
	errOverflow = errors.New("varint overflows 64 bits")
)

// uvarint decodes at b[p:]; the new p is -1 when b ends first, -2 on overflow.
func uvarint(b []byte, p int) (uint64, int) {
	if uint(p) < uint(len(b)) {
		if c := b[p]; c < 0x80 {
			return uint64(c), p + 1
		}
	}
	return uvarintSlow(b, p)
}

// uvarintSlow is uvarint past its one-byte case: b[p] >= 0x80 if p is in b.
func uvarintSlow(b []byte, p int) (uint64, int) {
	if len(b)-p >= binary.MaxVarintLen64 {
		// The common case, away from the block's end: one bounds check.
		bb := b[p : p+binary.MaxVarintLen64]
		// Unrolled for 2 to 4 bytes: nanosecond steps and latencies.
		x := uint64(bb[0]&0x7f) | uint64(bb[1]&0x7f)<<7
		if bb[1] < 0x80 {
			return x, p + 2
		}
		x |= uint64(bb[2]&0x7f) << 14
		if bb[2] < 0x80 {
			return x, p + 3
		}
		x |= uint64(bb[3]&0x7f) << 21
		if bb[3] < 0x80 {
			return x, p + 4
		}
		for i := 4; i < binary.MaxVarintLen64; i++ {
			c := bb[i]
			if c < 0x80 {
				if i == binary.MaxVarintLen64-1 && c > 1 {
					return 0, -2
				}
				return x | uint64(c)<<(7*i), p + i + 1
			}
			x |= uint64(c&0x7f) << (7 * i)
		}
		return 0, -2
	}
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if p >= len(b) {
			return 0, -1
		}
		c := b[p]
		p++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -2
			}
			return x | uint64(c)<<s, p
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, -2
}

func unzig(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func varintErr(p int) error {
	if p == -1 {
		return errShort
	}
	return errOverflow
}

// next decodes one item at d.pos. It reports whether the item was a Result
// (in res); d.pos moves only past whole items.
func (d *binDecoder) next(res *client.Result) (bool, error) {
	b := d.block
	p := d.pos
	if p >= len(b) {
		return false, errShort
	}
	tag := b[p]
	p++
	if tag&tagResult == 0 {
		return false, d.define(tag, p)
	}
	if tag&flagExt != 0 && d.version < 2 {
		return false, fmt.Errorf("reserved flag set in record tag 0x%02x", tag)
	}
	var v uint64
	seq := d.prevSeq + 1
	if tag&flagSeq != 0 {
		if p < len(b) && b[p] < 0x80 {
			v, p = uint64(b[p]), p+1
		} else if v, p = uvarintSlow(b, p); p < 0 {
			return false, varintErr(p)
		}
		seq += uint64(unzig(v))
	}
	if p < len(b) && b[p] < 0x80 {
		v, p = uint64(b[p]), p+1
	} else if v, p = uvarintSlow(b, p); p < 0 {
		return false, varintErr(p)
	}
	start := d.prevStart + time.Duration(unzig(v))
	if p < len(b) && b[p] < 0x80 {
		v, p = uint64(b[p]), p+1
	} else if v, p = uvarintSlow(b, p); p < 0 {
		return false, varintErr(p)
	}
	latency := time.Duration(unzig(v))
	status := d.prevStatus
	if tag&flagStatus != 0 {
		if p < len(b) && b[p] < 0x80 {
			v, p = uint64(b[p]), p+1
		} else if v, p = uvarintSlow(b, p); p < 0 {
			return false, varintErr(p)
		}
		status = int(unzig(v))
	}
	if p < len(b) && b[p] < 0x80 {
		v, p = uint64(b[p]), p+1
	} else if v, p = uvarintSlow(b, p); p < 0 {
		return false, varintErr(p)
	}
	if v >= uint64(len(d.backends)) {
		return false, fmt.Errorf("record refers to undefined backend #%d", v)
	}
	bslot := int(v)
	if p < len(b) && b[p] < 0x80 {
		v, p = uint64(b[p]), p+1
	} else if v, p = uvarintSlow(b, p); p < 0 {
		return false, varintErr(p)
	}
	conn := d.prevConn + uint64(unzig(v))
	if p < len(b) && b[p] < 0x80 {
		v, p = uint64(b[p]), p+1
	} else if v, p = uvarintSlow(b, p); p < 0 {
		return false, varintErr(p)
	}
	if v > math.MaxUint32 {
		return false, fmt.Errorf("connection request number %d out of range", v)
	}
	connReq := uint32(v)
	closeReason := client.CloseNone
	if tag&flagClose != 0 {
		if p >= len(b) {
			return false, errShort
		}
		if c := b[p]; c == 0 || int(c) >= numCloseReasons {
			return false, fmt.Errorf("unknown close reason %d", c)
		}
		closeReason = client.CloseReason(b[p])
		p++
	}
	nbytes := d.prevBytes
	if tag&flagBytes != 0 {
		if p < len(b) && b[p] < 0x80 {
			v, p = uint64(b[p]), p+1
		} else if v, p = uvarintSlow(b, p); p < 0 {
			return false, varintErr(p)
		}
		nbytes = unzig(v)
	}
	total := int64(-1)
	if tag&flagTotal != 0 {
		if p < len(b) && b[p] < 0x80 {
			v, p = uint64(b[p]), p+1
		} else if v, p = uvarintSlow(b, p); p < 0 {
			return false, varintErr(p)
		}
		total = d.lastTotal[bslot] + unzig(v)
	}
	errText := ""
	if tag&flagErr != 0 {
		if p < len(b) && b[p] < 0x80 {
			v, p = uint64(b[p]), p+1
		} else if v, p = uvarintSlow(b, p); p < 0 {
			return false, varintErr(p)
		}
		if v >= uint64(len(d.errs)) {
			return false, fmt.Errorf("record refers to undefined error text #%d", v)
		}
		errText = d.errs[v]
	}
	kind, code, gcode, delay := client.KindRequest, uint16(0), uint16(0), time.Duration(0)
	if tag&flagExt != 0 {
		if p >= len(b) {
			return false, errShort
		}
		ext := b[p]
		p++
		if ext&extReserved != 0 {
			return false, fmt.Errorf("reserved extension bits 0x%02x", ext&extReserved)
		}
		if ext&extKind != 0 {
			if p >= len(b) {
				return false, errShort
			}
			if k := b[p]; k == 0 || int(k) >= numKinds {
				return false, fmt.Errorf("unknown record kind %d", k)
			}
			kind = client.Kind(b[p])
			p++
		}
		if ext&extCloseCode != 0 {
			if v, p = uvarint(b, p); p < 0 {
				return false, varintErr(p)
			}
			if v == 0 || v > math.MaxUint16 {
				return false, fmt.Errorf("close code %d out of range", v)
			}
			code = uint16(v)
		}
		if ext&extGRPCCode != 0 {
			if d.version < grpcVersion {
				return false, fmt.Errorf("a gRPC code in a version %d file", d.version)
			}
			if v, p = uvarint(b, p); p < 0 {
				return false, varintErr(p)
			}
			if v == 0 || v > math.MaxUint16 {
				return false, fmt.Errorf("gRPC code %d out of range", v)
			}
			gcode = uint16(v)
		}
		if ext&extDelay != 0 {
			if d.version < delayVersion {
				return false, fmt.Errorf("a send delay in a version %d file", d.version)
			}
			if v, p = uvarint(b, p); p < 0 {
				return false, varintErr(p)
			}
			if delay = time.Duration(unzig(v)); delay == 0 {
				return false, errors.New("send delay 0 coded explicitly")
			}
		}
	}
	if tag&flagTotal != 0 {
		d.lastTotal[bslot] = total
	}
	// checkTimes, without its call where all three are in range (a
	// negative one is a huge unsigned one).
	if uint64(start) > uint64(maxOffset) || uint64(delay) > uint64(maxOffset) || uint64(latency) > uint64(maxOffset) {
		if err := checkTimes(start, delay, latency); err != nil {
			return false, fmt.Errorf("record %d: %w", seq, err)
		}
	}
	*res = client.Result{
		Seq: seq, Start: start, Delay: delay, Latency: latency, Status: status,
		Backend: d.backends[bslot], Conn: conn, ConnReq: connReq, Close: closeReason,
		Bytes: nbytes, ServerTotal: total, Err: errText, Kind: kind, CloseCode: code, GRPCCode: gcode,
	}
	d.prevSeq, d.prevStart, d.prevStatus, d.prevBytes, d.prevConn = seq, start, status, nbytes, conn
	d.pos = p
	return true, nil
}

// appendEvent appends an event item.
func appendEvent(b []byte, e *Event) []byte {
	b = append(b, tagEvent)
	b = binary.AppendVarint(b, int64(e.T))
	for _, s := range [...]string{e.Kind, e.Object, e.Detail} {
		s = clipString(s)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// event decodes an event item whose tag was at p-1.
func (d *binDecoder) event(p int) error {
	b := d.block
	t, p := uvarint(b, p)
	if p < 0 {
		return varintErr(p)
	}
	var strs [3]string
	for i := range strs {
		var n uint64
		if n, p = uvarint(b, p); p < 0 {
			return varintErr(p)
		}
		if n > maxStringLen {
			return fmt.Errorf("string of %d bytes exceeds the limit of %d", n, maxStringLen)
		}
		if uint64(len(b)-p) < n {
			return errShort
		}
		strs[i] = string(b[p : p+int(n)])
		p += int(n)
	}
	if strs[0] == "" {
		return errors.New("event without a kind")
	}
	if len(*d.events) >= maxEvents {
		return fmt.Errorf("more than %d events", maxEvents)
	}
	*d.events = append(*d.events, Event{T: time.Duration(unzig(t)), Kind: strs[0], Object: strs[1], Detail: strs[2]})
	d.pos = p
	return nil
}

// define decodes a define item whose tag was at p-1.
func (d *binDecoder) define(tag byte, p int) error {
	if tag == tagEvent && d.version >= eventsVersion {
		return d.event(p)
	}
	if tag != tagBackend && tag != tagErr {
		return fmt.Errorf("unknown item tag 0x%02x", tag)
	}
	b := d.block
	var slot, n uint64
	if slot, p = uvarint(b, p); p < 0 {
		return varintErr(p)
	}
	if n, p = uvarint(b, p); p < 0 {
		return varintErr(p)
	}
	table := &d.backends
	if tag == tagErr {
		table = &d.errs
	}
	if slot >= maxSlots || slot > uint64(len(*table)) {
		return fmt.Errorf("string slot %d out of order (%d defined)", slot, len(*table))
	}
	if n > maxStringLen {
		return fmt.Errorf("string of %d bytes exceeds the limit of %d", n, maxStringLen)
	}
	if uint64(len(b)-p) < n {
		return errShort
	}
	s := string(b[p : p+int(n)])
	if slot == uint64(len(*table)) {
		*table = append(*table, s)
		if tag == tagBackend {
			d.lastTotal = append(d.lastTotal, 0)
		}
	} else {
		(*table)[slot] = s
		if tag == tagBackend {
			d.lastTotal[slot] = 0
		}
	}
	d.pos = p + int(n)
	return nil
}

// readBlock reads the next block header and payload. full is false when the
// file ended inside the payload; payload then holds what was there. A file
// that ends inside (or right before) a block header is a truncation.
func (r *Reader) readBlock(limit int) (kind byte, payload []byte, full bool, err error) {
	d := &r.bin
	start := d.off
	n, err := io.ReadFull(r.br, d.hdr[:])
	d.off += int64(n)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, nil, false, r.truncated(d.off)
		}
		return 0, nil, false, fmt.Errorf("%s: read: %w", r.name(), err)
	}
	kind = d.hdr[0]
	size := binary.LittleEndian.Uint32(d.hdr[1:5])
	if kind != blockHeader && kind != blockRecords && kind != blockTrailer {
		return 0, nil, false, r.corruptAt(start, "unknown block kind 0x%02x", kind)
	}
	if uint64(size) > uint64(limit) {
		return 0, nil, false, r.corruptAt(start, "block of %d bytes exceeds the limit of %d", size, limit)
	}
	// Grow as data arrives so a bogus length cannot make us allocate for nothing.
	buf := d.block[:0]
	for len(buf) < int(size) {
		chunk := min(int(size)-len(buf), 1<<20)
		if cap(buf)-len(buf) < chunk {
			nb := make([]byte, len(buf), max(len(buf)+chunk, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r.br, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		d.off += int64(m)
		if err != nil {
			d.block = buf
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return kind, buf, false, nil
			}
			return 0, nil, false, fmt.Errorf("%s: read: %w", r.name(), err)
		}
	}
	d.block = buf
	t := castagnoli()
	crc := crc32.Update(crc32.Update(0, t, d.hdr[:5]), t, buf)
	if crc != binary.LittleEndian.Uint32(d.hdr[5:9]) {
		return 0, nil, false, r.corruptAt(start, "checksum mismatch in block of %d bytes", size)
	}
	return kind, buf, true, nil
}

func (r *Reader) readBinaryHeader() error {
	d := &r.bin
	var mv [len(binaryMagic) + 1]byte
	n, err := io.ReadFull(r.br, mv[:])
	d.off = int64(n)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return r.truncated(d.off)
		}
		return fmt.Errorf("%s: read: %w", r.name(), err)
	}
	if string(mv[:len(binaryMagic)]) != binaryMagic {
		return fmt.Errorf("%s: not a kaload results file", r.name())
	}
	if v := mv[len(binaryMagic)]; v > binaryVersion {
		return newerVersionError(r.name(), uint64(v), binaryVersion)
	} else if v == 0 {
		return r.corruptAt(int64(len(binaryMagic)), "format version 0")
	}
	d.version = mv[len(binaryMagic)]
	d.events = &r.events
	start := d.off
	kind, payload, full, err := r.readBlock(maxHeaderLen)
	if err != nil {
		return err
	}
	if kind != blockHeader {
		return r.corruptAt(start, "expected the header block, found kind %q", kind)
	}
	if !full {
		return r.truncated(d.off)
	}
	if err := json.Unmarshal(payload, &r.header); err != nil {
		return r.corruptAt(start, "header: %v", err)
	}
	d.block = d.block[:0]
	d.prevSeq, d.prevStatus = math.MaxUint64, 200
	return nil
}

func (r *Reader) readBinary(res *client.Result) error {
	d := &r.bin
	for {
		if itemOff := d.pos; itemOff < len(d.block) {
			ok, err := d.next(res)
			if ok {
				return nil
			}
			if err == nil {
				continue // a define or an event
			}
			if err == errShort {
				if d.partial {
					return r.truncated(d.off)
				}
				err = errors.New("record runs past the end of its block")
			}
			return r.corruptAt(d.blockOff+int64(itemOff), "%v", err)
		}
		// The block is used up.
		if d.partial {
			return r.truncated(d.off)
		}
		start := d.off
		kind, payload, full, err := r.readBlock(maxBlockLen)
		if err != nil {
			return err
		}
		switch kind {
		case blockRecords:
			d.pos, d.partial, d.blockOff = 0, !full, start+blockHeaderLen
		case blockTrailer:
			if !full {
				return r.truncated(d.off)
			}
			return r.readBinaryTrailer(start, payload)
		default:
			return r.corruptAt(start, "unexpected block kind %q", kind)
		}
	}
}

func (r *Reader) readBinaryTrailer(start int64, b []byte) error {
	count, p := uvarint(b, 0)
	if p < 0 {
		return r.corruptAt(start, "trailer: bad record count")
	}
	var end uint64
	if end, p = uvarint(b, p); p < 0 {
		return r.corruptAt(start, "trailer: bad end time")
	}
	unsent := int64(-1)
	if r.bin.version >= delayVersion {
		var u uint64
		if u, p = uvarint(b, p); p < 0 {
			return r.corruptAt(start, "trailer: bad unsent count")
		}
		if unsent = unzig(u); unsent < -1 {
			return r.corruptAt(start, "trailer: unsent count %d", unsent)
		}
	}
	if p != len(b) {
		return r.corruptAt(start, "trailer: %d unexpected bytes", len(b)-p)
	}
	if int64(count) != r.n || count > math.MaxInt64 {
		return r.corruptAt(start, "trailer counts %d records but the file holds %d", count, r.n)
	}
	if _, err := r.br.Peek(1); err == nil {
		return r.corruptAt(r.bin.off, "data after the trailer")
	}
	r.trailer = Trailer{Records: int64(count), End: time.Unix(0, unzig(end)), Unsent: unsent}
	r.hasTrailer = true
	return io.EOF
}
