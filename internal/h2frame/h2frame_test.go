package h2frame

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"golang.org/x/net/http2"
)

// frames writes a realistic server-side frame sequence with x/net/http2's
// Framer, with the GOAWAY frames among them.
func frames(t testing.TB, goaways []GoAway) []byte {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	fr.WriteSettingsAck()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x88}, EndHeaders: true})
	fr.WriteData(1, false, bytes.Repeat([]byte("x"), 20000))
	for i, g := range goaways {
		fr.WriteGoAway(g.LastStreamID, http2.ErrCode(g.Code), []byte(g.Debug))
		fr.WritePing(false, [8]byte{byte(i)})
		fr.WriteData(1, false, nil)
	}
	fr.WriteData(1, true, []byte("end"))
	return b.Bytes()
}

func TestScannerFindsGoAways(t *testing.T) {
	want := []GoAway{{1<<31 - 1, 0, "max_age"}, {7, 0, "max_age"}, {9, 11, "too_many_pings"}, {3, 2, ""}}
	data := frames(t, want)
	for _, chunk := range []int{1, 2, 9, 10, 4096, len(data)} {
		var got []GoAway
		s := Scanner{OnGoAway: func(g GoAway) { got = append(got, g) }}
		for p := data; len(p) > 0; {
			n := min(chunk, len(p))
			s.Scan(p[:n])
			p = p[n:]
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("chunks of %d: %+v, want %+v", chunk, got, want)
		}
	}
}

func TestScannerCutsLongDebugData(t *testing.T) {
	long := string(bytes.Repeat([]byte("d"), 1000))
	var got []GoAway
	s := Scanner{OnGoAway: func(g GoAway) { got = append(got, g) }}
	s.Scan(frames(t, []GoAway{{5, 0, long}}))
	if len(got) != 1 || got[0].Debug != long[:maxDebugLen] || got[0].LastStreamID != 5 {
		t.Errorf("%+v", got)
	}
}

// FuzzScanner: any bytes, cut anywhere, give the same GOAWAYs as whole,
// and never a panic; a valid frame stream gives exactly x/net/http2's.
func FuzzScanner(f *testing.F) {
	f.Add(frames(f, []GoAway{{1, 0, "a"}}), uint64(1))
	f.Add(frames(f, []GoAway{{1<<31 - 1, 0, "max_age"}, {3, 0, "max_age"}}), uint64(7))
	f.Add([]byte{0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, uint64(3))
	f.Add([]byte{0, 0, 2, 7, 0, 0, 0, 0, 0, 1, 2}, uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		var whole []GoAway
		(&Scanner{OnGoAway: func(g GoAway) { whole = append(whole, g) }}).Scan(data)
		var cut []GoAway
		s := Scanner{OnGoAway: func(g GoAway) { cut = append(cut, g) }}
		r := rand.New(rand.NewPCG(seed, seed))
		for p := data; len(p) > 0; {
			n := min(1+r.IntN(20), len(p))
			s.Scan(p[:n])
			p = p[n:]
		}
		if !reflect.DeepEqual(whole, cut) {
			t.Fatalf("whole %+v, cut %+v", whole, cut)
		}
		// Where x/net/http2 reads the stream cleanly, the GOAWAYs agree.
		fr := http2.NewFramer(nil, bytes.NewReader(data))
		fr.SetMaxReadFrameSize(1<<24 - 1)
		var ref []GoAway
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				if err.Error() != "EOF" {
					return // malformed: the peer would end the connection; nothing to compare
				}
				break
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				d := g.DebugData()
				if len(d) > maxDebugLen {
					d = d[:maxDebugLen]
				}
				ref = append(ref, GoAway{LastStreamID: g.LastStreamID, Code: uint32(g.ErrCode), Debug: string(d)})
			}
		}
		if len(ref) != len(whole) || len(ref) > 0 && !reflect.DeepEqual(ref, whole) {
			t.Fatalf("x/net/http2 reads %+v, the scanner %+v", ref, whole)
		}
	})
}
