package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kaload/kaload/internal/lab"
)

func TestLabFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, o *labOptions)
	}{
		{"defaults", nil, func(t *testing.T, o *labOptions) {
			if !reflect.DeepEqual(o.MaxRequests, []int{0, 5}) || o.Pods != "1:3" || o.ScaleAt != 5*time.Second ||
				o.Duration != 12*time.Second || o.HPA || o.Balancer != "random" || o.Format != "table" || o.Rate != 200 {
				t.Errorf("defaults = %+v", o)
			}
		}},
		{"scenario list", []string{"--max-requests", "0,5,100", "--max-conn-age", "2s"}, func(t *testing.T, o *labOptions) {
			if !reflect.DeepEqual(o.MaxRequests, []int{0, 5, 100}) || !reflect.DeepEqual(o.MaxConnAge, []time.Duration{2 * time.Second}) {
				t.Errorf("scenarios = %v %v", o.MaxRequests, o.MaxConnAge)
			}
		}},
		{"max-conn-age alone compares with no recycling", []string{"--max-conn-age", "1s,3s"}, func(t *testing.T, o *labOptions) {
			if !reflect.DeepEqual(o.MaxRequests, []int{0}) || len(o.MaxConnAge) != 2 {
				t.Errorf("scenarios = %v %v", o.MaxRequests, o.MaxConnAge)
			}
		}},
		{"websocket defaults: sticky vs an age limit", []string{"--protocol", "ws"}, func(t *testing.T, o *labOptions) {
			if o.Protocol != "ws" || !reflect.DeepEqual(o.MaxRequests, []int{0}) || !reflect.DeepEqual(o.MaxConnAge, []time.Duration{2 * time.Second}) {
				t.Errorf("protocol %q scenarios = %v %v", o.Protocol, o.MaxRequests, o.MaxConnAge)
			}
		}},
		{"websocket with chosen scenarios", []string{"--protocol", "ws", "--max-conn-age", "5s"}, func(t *testing.T, o *labOptions) {
			if !reflect.DeepEqual(o.MaxRequests, []int{0}) || !reflect.DeepEqual(o.MaxConnAge, []time.Duration{5 * time.Second}) {
				t.Errorf("scenarios = %v %v", o.MaxRequests, o.MaxConnAge)
			}
		}},
		{"hpa", []string{"--hpa", "--target-rps-per-pod", "50", "--max-pods", "4", "--sync", "1s", "-c", "20", "-d", "9s", "--seed", "7", "--balancer", "rr", "-o", "out", "--format", "json"}, func(t *testing.T, o *labOptions) {
			if !o.HPA || o.TargetRPS != 50 || o.MaxPods != 4 || o.Sync != time.Second || o.Connections != 20 ||
				o.Duration != 9*time.Second || o.Seed != 7 || o.Balancer != "rr" || o.OutDir != "out" || o.Format != "json" {
				t.Errorf("options = %+v", o)
			}
		}},
		{"repeated expect", []string{"--expect", "max-requests=5:min_share>=0.25", "--expect", "p99<1s"}, func(t *testing.T, o *labOptions) {
			if !reflect.DeepEqual(o.Expect, []string{"max-requests=5:min_share>=0.25", "p99<1s"}) {
				t.Errorf("expect = %q", o.Expect)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *labOptions
			s := &streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
			cmd := newCmdLab(s, func(_ context.Context, o *labOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(s.Out)
			cmd.SetErr(s.Err)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
			if _, err := got.labConfig(); err != nil {
				t.Errorf("labConfig: %v", err)
			}
		})
	}
}

func TestLabUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--pods", "three"}, "--pods"},
		{[]string{"--pods", "3:1"}, "--pods: 3:1"},
		{[]string{"--format", "yaml"}, "--format"},
		{[]string{"--balancer", "ipvs-sh"}, "--balancer"},
		{[]string{"--scale-at", "20s"}, "--scale-at"},
		{[]string{"--max-requests", "-1"}, "--max-requests"},
		{[]string{"--max-conn-age", "-1s"}, "--max-conn-age"},
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--hpa", "--max-pods", "0"}, "--max-pods"},
		{[]string{"--expect", "max-requests=7:min_share>0.1"}, `no scenario named "max-requests=7"`},
		{[]string{"--expect", "bogus>1"}, "--expect"},
		{[]string{"--max-requests", "x"}, "max-requests"},
		{[]string{"extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"lab"}, tt.args...), &streams{In: strings.NewReader(""), Out: &out, Err: &errb})
			if code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr %q does not name %q", errb.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout not empty on a usage error: %q", out.String())
			}
		})
	}
}

func TestLabHelpHasExamples(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"lab", "--help"}, &streams{In: strings.NewReader(""), Out: &out, Err: &out}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"kaload lab --hpa", "--expect 'max-requests=5:min_share>=0.25'", "kube-proxy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// TestLabEndToEnd runs the real command with short scenarios: JSON on
// stdout, results files in -o DIR, and exit 3 for the expectation that
// keep-alive without recycling cannot meet.
func TestLabEndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := filepath.Join(t.TempDir(), "results")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"lab", "-d", "2s", "--scale-at", "700ms", "--rate", "100", "-c", "4",
		"--balancer", "roundrobin", "--format", "json", "-o", dir,
		"--expect", "max-requests=5:min_share>=0.15", "--expect", "max-requests=0:min_share>=0.15"},
		&streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != exitExpectFail {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitExpectFail, errb.String())
	}
	var res lab.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if len(res.Scenarios) != 2 {
		t.Fatalf("got %d scenarios", len(res.Scenarios))
	}
	if !strings.Contains(errb.String(), "kaload: max-requests=0: FAIL min_share>=0.15 (actual 0)") {
		t.Errorf("stderr does not name the failed expectation: %q", errb.String())
	}
	keep, recycle := res.Scenarios[0], res.Scenarios[1]
	if keep.Name != "max-requests=0" || keep.Outcome != lab.OutcomeStuck || keep.NewPodsShare != 0 || keep.ExpectOK {
		t.Errorf("no recycling: %s %s share %v expect ok %v", keep.Name, keep.Outcome, keep.NewPodsShare, keep.ExpectOK)
	}
	if recycle.Name != "max-requests=5" || recycle.Outcome != lab.OutcomeRebalanced || !recycle.ExpectOK {
		t.Errorf("recycling: %s %s share %v expect ok %v (%s)", recycle.Name, recycle.Outcome, recycle.NewPodsShare, recycle.ExpectOK, recycle.Verdict)
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) != 2 {
		t.Errorf("-o %s holds %v (%v), want two results files", dir, files, err)
	}
}

func FuzzParsePods(f *testing.F) {
	for _, s := range []string{"1:3", "2", " 1 : 4 ", "0:1", "3:", ":", "a:b", "1:3:5", "-1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parsePods(s)
		if err != nil {
			if !strings.Contains(err.Error(), "--pods") {
				t.Errorf("error %q does not name the flag", err)
			}
			return
		}
		if start < 1 || end < 1 {
			t.Errorf("parsePods(%q) = %d, %d without error", s, start, end)
		}
	})
}

func FuzzParseLabExpect(f *testing.F) {
	for _, s := range []string{"min_share>=0.25", "max-requests=5:min_share>=0.25", "max-requests=9:p99<1s",
		"share(127.0.0.1:8080)<0.5", "max-requests=0:share(pod-2)>0", ":", "max-:x"} {
		f.Add(s)
	}
	scs := []lab.Scenario{{Name: "max-requests=0"}, {Name: "max-requests=5", MaxRequests: 5}}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseLabExpect([]string{s}, scs)
		if err != nil {
			if !strings.Contains(err.Error(), "--expect") {
				t.Errorf("error %q does not name the flag", err)
			}
			return
		}
		n := 0
		for scope, xs := range m {
			if scope != "" && scope != "max-requests=0" && scope != "max-requests=5" {
				t.Errorf("parseLabExpect(%q) scoped to unknown scenario %q", s, scope)
			}
			n += len(xs)
		}
		if n != 1 {
			t.Errorf("parseLabExpect(%q) gave %d expectations, want 1", s, n)
		}
	})
}

// TestLabHTML: --format html writes one page with the scenarios side by side.
func TestLabHTML(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"lab", "-d", "1s", "--scale-at", "400ms", "--rate", "50", "-c", "2", "--format", "html"},
		&streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	page := out.String()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || strings.Count(page, `data-chart="rps"`) != 2 || !strings.Contains(page, `data-kind="scale"`) {
		t.Errorf("not a two-scenario HTML page with scale markers:\n%.2000s", page)
	}
}
