package results

import (
	"encoding/binary"
	"testing"
)

// uvarint and uvarintSlow must agree with encoding/binary on every
// length, at every distance from the block's end, and on overlong and
// overflowing inputs.
func TestUvarintMatchesBinary(t *testing.T) {
	values := []uint64{0, 1, 127, 128, 300, 16383, 16384, 1<<21 - 1, 1 << 21, 400_000, 10_400_000,
		1<<28 - 1, 1 << 28, 1<<35 + 5, 1<<42 - 1, 1<<49 + 7, 1<<56 - 1, 1 << 56, 1<<63 + 12345, 1<<64 - 1}
	for _, v := range values {
		enc := binary.AppendUvarint(nil, v)
		for pad := 0; pad <= 12; pad++ { // bytes after it: uvarintSlow unrolls where 10 are left
			for pre := 0; pre <= 2; pre++ {
				b := make([]byte, pre, pre+len(enc)+pad)
				b = append(b, enc...)
				for i := 0; i < pad; i++ {
					b = append(b, 0xff^byte(i)) // continuation bits set: they must not leak in
				}
				for name, f := range map[string]func([]byte, int) (uint64, int){"uvarint": uvarint, "slow": uvarintSlow} {
					if name == "slow" && v < 0x80 {
						continue // its callers take one byte themselves
					}
					got, p := f(b, pre)
					if got != v || p != pre+len(enc) {
						t.Errorf("%s(%x, %d) = %d, %d; want %d, %d", name, b, pre, got, p, v, pre+len(enc))
					}
				}
			}
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
		p    int // -1 short, -2 overflow
	}{
		{"empty", nil, -1},
		{"cut", []byte{0x80, 0x80}, -1},
		{"cut at 8", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, -1},
		{"eleven bytes", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, -2},
		{"tenth byte too big", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0}, -2},
	} {
		for name, f := range map[string]func([]byte, int) (uint64, int){"uvarint": uvarint, "slow": uvarintSlow} {
			if _, p := f(tc.b, 0); p != tc.p {
				t.Errorf("%s %s: p = %d, want %d", name, tc.name, p, tc.p)
			}
		}
	}
}

// FuzzUvarint checks the decoder against encoding/binary on any bytes: the
// same value and length, or both refuse.
func FuzzUvarint(f *testing.F) {
	f.Add([]byte{0x80, 0x80, 0x01, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		want, n := binary.Uvarint(b)
		got, p := uvarint(b, 0)
		if n > 0 && (got != want || p != n) {
			t.Fatalf("uvarint(%x) = %d, %d; want %d, %d", b, got, p, want, n)
		}
		if n <= 0 && p >= 0 {
			t.Fatalf("uvarint(%x) = %d, %d; binary.Uvarint refuses (%d)", b, got, p, n)
		}
	})
}
