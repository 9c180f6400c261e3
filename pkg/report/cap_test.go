package report

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/kaload/kaload/pkg/client"
)

// A server controls the backend header: one unique value per response must
// not cost a histogram each. Before the cap, 100,000 names took about 1 GB.
func TestBackendCapBoundsMemory(t *testing.T) {
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// A tracked backend's histogram allocates ~190 KB (of which a few KB are
	// ever touched, so RSS is ~10 KB): 1,000 of them ~190 MB of heap. Without
	// the cap 100,000 names would allocate ~19 GB; stop early then.
	const bound = 400 << 20
	a := NewAggregator(Options{})
	for i := range n {
		a.addT(&client.Result{Start: 1, Status: 200, Backend: "pod-" + strconv.Itoa(i), Conn: uint64(i + 1), ConnReq: 1, ServerTotal: -1})
		if i%5000 == 4999 || i == n-1 {
			runtime.ReadMemStats(&after)
			if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > bound {
				t.Fatalf("heap grew by %d MB after %d backend names", grew>>20, i+1)
			}
		}
	}
	s := a.Summary()
	runtime.KeepAlive(a)
	if s.Requests != n || len(s.Backends) != DefaultMaxBackends+1 {
		t.Fatalf("%d requests, %d backend rows; want %d, %d", s.Requests, len(s.Backends), n, DefaultMaxBackends+1)
	}
	if s.FoldedBackends != n-DefaultMaxBackends || s.FoldedAtLeast || s.MaxBackends != DefaultMaxBackends {
		t.Fatalf("folded %d (at least %v, max %d), want %d", s.FoldedBackends, s.FoldedAtLeast, s.MaxBackends, n-DefaultMaxBackends)
	}
	other := s.Backends[len(s.Backends)-1]
	if other.Name != OtherBackend || other.Requests != n-DefaultMaxBackends || other.Connections != n-DefaultMaxBackends {
		t.Fatalf("last row %+v, want %s with %d requests", other, OtherBackend, n-DefaultMaxBackends)
	}
}

// Hand-computed: cap 2, names a b c d c a over six requests. a and b are
// tracked (a: 2, b: 1); c and d fold (2 names, 3 requests). Shares over all
// 6 attributed requests: a 2/6, b 1/6, other 3/6. The failed dial ("")
// stays unattributed and does not count against the cap.
func TestBackendCapFolds(t *testing.T) {
	a := NewAggregator(Options{MaxBackends: 2})
	a.addT(&client.Result{Err: "dial: refused", ServerTotal: -1})
	for i, name := range []string{"a", "b", "c", "d", "c", "a"} {
		a.addT(&client.Result{Status: 200, Backend: name, Conn: uint64(i + 1), ConnReq: 1, ServerTotal: -1})
	}
	s := a.Summary()
	want := []struct {
		name     string
		requests uint64
		share    float64
	}{{"a", 2, 0.333333}, {"b", 1, 0.166667}, {OtherBackend, 3, 0.5}}
	if len(s.Backends) != len(want) || s.Unattributed != 1 || s.FoldedBackends != 2 {
		t.Fatalf("backends %+v unattributed %d folded %d", s.Backends, s.Unattributed, s.FoldedBackends)
	}
	for i, w := range want {
		if b := s.Backends[i]; b.Name != w.name || b.Requests != w.requests || b.Share != w.share {
			t.Errorf("row %d: %s %d %v, want %s %d %v", i, b.Name, b.Requests, b.Share, w.name, w.requests, w.share)
		}
	}
	if len(s.Rebalance) != 0 {
		t.Errorf("rebalance %+v: the other row must not be judged", s.Rebalance)
	}
	if want := "2 more backend names than the 2 tracked one by one were folded into (other)"; !strings.Contains(s.Verdict, want) {
		t.Errorf("verdict %q lacks %q", s.Verdict, want)
	}
	// No cap: every name is its own row.
	u := NewAggregator(Options{MaxBackends: -1})
	for i := range 3000 {
		u.addT(&client.Result{Status: 200, Backend: strconv.Itoa(i), ServerTotal: -1})
	}
	if s := u.Summary(); len(s.Backends) != 3000 || s.FoldedBackends != 0 {
		t.Fatalf("uncapped: %d rows, %d folded", len(s.Backends), s.FoldedBackends)
	}
}

// An aborted request is "interrupted" whatever else its text could match;
// a transport error that merely mentions the word is not.
func TestErrorKindInterrupted(t *testing.T) {
	for _, tc := range []struct{ err, kind string }{
		{client.ErrInterrupted, "interrupted"},
		{"read tcp: interrupted system call", "other"},
		{"read tcp 127.0.0.1:1: i/o timeout", "timeout"},
	} {
		if got := errorKind(&client.Result{Err: tc.err}); got != tc.kind {
			t.Errorf("errorKind(%q) = %q, want %q", tc.err, got, tc.kind)
		}
	}
}

// Names count against the cap by their bytes too: 4 MiB of 64 KiB names
// is 64 backends, whatever --max-backends says.
func TestBackendCapByNameBytes(t *testing.T) {
	a := NewAggregator(Options{})
	name := []byte(strings.Repeat("n", 64<<10))
	for i := range 100 {
		copy(name, strconv.Itoa(i)+"-")
		a.addT(&client.Result{Status: 200, Backend: string(name), ServerTotal: -1})
	}
	s := a.Summary()
	if s.TrackedBackends != 64 || s.FoldedBackends != 36 || len(s.Backends) != 65 {
		t.Fatalf("tracked %d, folded %d, rows %d; want 64, 36, 65", s.TrackedBackends, s.FoldedBackends, len(s.Backends))
	}
	if !strings.Contains(s.Verdict, "36 more backend names than the 64 tracked one by one") {
		t.Errorf("verdict %q", s.Verdict)
	}
}
