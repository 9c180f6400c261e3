package report

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

// TestEventsThroughFile: events written next to results reach the summary
// through a real file, on the run's clock, in time order.
func TestEventsThroughFile(t *testing.T) {
	var buf bytes.Buffer
	w, err := results.NewWriter(&buf, results.FormatJSONL, results.Header{Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	evs := []results.Event{
		{T: 2 * time.Second, Kind: results.EventPodReady, Object: "pod/web-b", Detail: "ip=10.0.0.8"},
		{T: 1500 * time.Millisecond, Kind: results.EventHPA, Object: "hpa/web", Detail: "desired=2 current=1"},
	}
	for i := range 10 {
		if i == 3 {
			for _, e := range evs {
				if err := w.WriteEvent(e); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Write(&client.Result{Seq: uint64(i), Start: time.Duration(i) * 300 * time.Millisecond, Status: 200, Backend: "web-a", Conn: 1, ConnReq: uint32(i + 1), ServerTotal: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd, err := results.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAggregator(Options{})
	run, err := a.AddRun(rd.Header())
	if err != nil {
		t.Fatal(err)
	}
	if err := run.AddAll(context.Background(), rd); err != nil {
		t.Fatal(err)
	}
	s := a.Summary()
	want := []Event{
		{TSeconds: 1.5, Kind: "hpa", Object: "hpa/web", Detail: "desired=2 current=1"},
		{TSeconds: 2, Kind: "pod.ready", Object: "pod/web-b", Detail: "ip=10.0.0.8"},
	}
	if s.Requests != 10 || !reflect.DeepEqual(s.Events, want) {
		t.Fatalf("requests %d, events %+v", s.Requests, s.Events)
	}
	js, _ := json.Marshal(s.Events[0])
	if string(js) != `{"t_seconds":1.5,"kind":"hpa","object":"hpa/web","detail":"desired=2 current=1"}` {
		t.Errorf("JSON %s", js)
	}
	// A summary without events has no "events" key.
	js, _ = json.Marshal(NewAggregator(Options{}).Summary())
	if bytes.Contains(js, []byte(`"events"`)) {
		t.Errorf("empty summary has events: %s", js)
	}
}

// TestEventsMerged: two hammers that watched the same cluster, started 1s
// apart, record the same pod event; the merged summary shows it once, at the
// earlier sighting, on the earliest run's clock. --from/--to cut events too.
func TestEventsMerged(t *testing.T) {
	tests := []struct {
		name     string
		from, to time.Duration
		want     []Event
	}{
		{"whole", 0, 0, []Event{
			{TSeconds: 3, Kind: "pod.created", Object: "pod/web-c"},
			{TSeconds: 4.5, Kind: "pod.ready", Object: "pod/web-c"},
			{TSeconds: 10, Kind: "pod.created", Object: "pod/web-c"}, // again, long after: a new fact
		}},
		{"window", 4 * time.Second, 10 * time.Second, []Event{
			{TSeconds: 4.5, Kind: "pod.ready", Object: "pod/web-c"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator(Options{From: tt.from, To: tt.to})
			r1, err := a.AddRun(results.Header{Label: "0", Start: t0})
			if err != nil {
				t.Fatal(err)
			}
			r2, err := a.AddRun(results.Header{Label: "1", Start: t0.Add(time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			r1.AddEvent(results.Event{T: 3 * time.Second, Kind: "pod.created", Object: "pod/web-c"})
			r2.AddEvent(results.Event{T: 2*time.Second + 500*time.Millisecond, Kind: "pod.created", Object: "pod/web-c"}) // 3.5s
			r2.AddEvent(results.Event{T: 3500 * time.Millisecond, Kind: "pod.ready", Object: "pod/web-c"})                // 4.5s
			r1.AddEvent(results.Event{T: 10 * time.Second, Kind: "pod.created", Object: "pod/web-c"})
			if got := a.Summary().Events; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events %+v, want %+v", got, tt.want)
			}
		})
	}
}
