package server

import (
	"strconv"
	"testing"
)

func TestNumberValue(t *testing.T) {
	for _, n := range []uint64{0, 1, 9, 10, 99, 100, 999, 1000, numberTableSize - 1, numberTableSize, 123456789, 1<<64 - 1} {
		v := numberValue(n)
		if len(v) != 1 || cap(v) != 1 || v[0] != strconv.FormatUint(n, 10) {
			t.Errorf("numberValue(%d) = %q (cap %d)", n, v, cap(v))
		}
		// A handler appending to the value must not disturb the shared table.
		_ = append(v, "x")
		if w := numberValue(n); w[0] != strconv.FormatUint(n, 10) {
			t.Errorf("after append, numberValue(%d) = %q", n, w)
		}
	}
	if n := testing.AllocsPerRun(100, func() { numberValue(numberTableSize - 1) }); n != 0 {
		t.Errorf("numberValue below the table size allocates %v times", n)
	}
}
