package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const docsPath = repoRoot + "/docs/kubernetes.md"

func readDocs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsKustomizationsRender: every directory the guide applies, deletes or
// renders exists and renders.
func TestDocsKustomizationsRender(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`kubectl (?:apply|delete) -k ([\w./-]+)|kubectl kustomize ([\w./-]+)`).FindAllStringSubmatch(readDocs(t), -1) {
		dir := m[1] + m[2]
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if st := render(t, repoRoot+"/"+dir); len(st.raw) == 0 {
			t.Errorf("docs: %s renders nothing", dir)
		}
	}
	if len(seen) < 5 {
		t.Errorf("docs name only %d kustomizations: the pattern no longer matches the guide", len(seen))
	}
}

// recorded runs kaload lab once per test binary: a scale-up from 1 to 5 pods,
// once without recycling (sticky: only the first pod answers) and once with
// MAX_REQUEST=5, each scenario's results file kept. scaleAt is when the new
// pods became Ready in them.
var recorded struct {
	once            sync.Once
	sticky, recycle string
	err             error
}

const scaleAt = "2s"

func recordedRuns(t *testing.T) (sticky, recycled string) {
	t.Helper()
	recorded.once.Do(func() {
		dir, err := os.MkdirTemp("", "kaload-docs-")
		if err != nil {
			recorded.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		code, _, stderr := runKaload(ctx, "lab", "--duration=6s", "--scale-at="+scaleAt, "--pods=1:5", "--max-requests=0,5", "--output="+dir)
		if code != 0 {
			recorded.err = &labError{stderr}
			return
		}
		for _, half := range []struct {
			name string
			out  *string
		}{{"max-requests-0.kld", &recorded.sticky}, {"max-requests-5.kld", &recorded.recycle}} {
			sub := filepath.Join(dir, strings.TrimSuffix(half.name, ".kld"))
			if err := os.Mkdir(sub, 0o755); err != nil {
				recorded.err = err
				return
			}
			// One directory per half, as the volume the report Job reads.
			if err := os.Rename(filepath.Join(dir, half.name), filepath.Join(sub, "hammer-0.kld")); err != nil {
				recorded.err = err
				return
			}
			*half.out = sub
		}
	})
	if recorded.err != nil {
		t.Fatalf("kaload lab: %v", recorded.err)
	}
	return recorded.sticky, recorded.recycle
}

type labError struct{ stderr string }

func (e *labError) Error() string { return e.stderr }

// TestDocsReportGate runs the report Job's CI gate as the guide writes it,
// with the volume and the window replaced by recorded runs: it must fail on
// the sticky half (one pod answered, four Ready pods idle) and pass on the
// recycled half; no fairness figure may claim an even spread for the sticky
// run.
func TestDocsReportGate(t *testing.T) {
	m := regexp.MustCompile(`args: \[(report, [^\]]+)\]`).FindStringSubmatch(readDocs(t))
	if m == nil {
		t.Fatal("docs: no report Job args with a gate")
	}
	docArgs := strings.Split(m[1], ", ")
	if !slices.Contains(docArgs, "/results") || !slices.Contains(docArgs, "--format=json") || !strings.Contains(m[1], "--expect=") {
		t.Fatalf("docs: report args %q: want /results, --format=json and an --expect", docArgs)
	}
	sticky, recycled := recordedRuns(t)
	for _, half := range []struct {
		name     string
		dir      string
		wantCode int
	}{{"sticky", sticky, 3}, {"recycled", recycled, 0}} {
		t.Run(half.name, func(t *testing.T) {
			var args []string
			for _, a := range docArgs {
				switch {
				case a == "/results":
					a = half.dir
				case strings.HasPrefix(a, "--from="):
					a = "--from=" + scaleAt // the recorded run scaled up here, not at 90s
				}
				args = append(args, a)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code, out, stderr := runKaload(ctx, args...)
			if code != half.wantCode {
				t.Fatalf("kaload %q exited %d, want %d\n%s%s", args, code, half.wantCode, out, stderr)
			}
			var sum struct {
				Requests       uint64                  `json:"requests"`
				Fairness       *struct{ Jain float64 } `json:"fairness"`
				FairnessNoData string                  `json:"fairness_no_data"`
				Expectations   []struct {
					Expr   string `json:"expr"`
					OK     bool   `json:"ok"`
					Actual string `json:"actual"`
				} `json:"expectations"`
			}
			if err := json.Unmarshal([]byte(out), &sum); err != nil {
				t.Fatalf("report JSON: %v\n%s", err, out)
			}
			if sum.Requests == 0 || len(sum.Expectations) == 0 {
				t.Fatalf("report of %s: %d requests, %d expectations", half.dir, sum.Requests, len(sum.Expectations))
			}
			for _, e := range sum.Expectations {
				if e.OK != (half.wantCode == 0) {
					t.Errorf("%s: %s ok=%v (actual %s)", half.name, e.Expr, e.OK, e.Actual)
				}
			}
			// The sticky run either knows the idle pods (the lab's events name
			// them: Jain 1/5) or says it cannot judge; never an even spread.
			if half.name == "sticky" {
				switch {
				case sum.Fairness != nil && sum.Fairness.Jain > 0.5:
					t.Errorf("sticky run: Jain %v claims a spread that one answering pod of five does not have", sum.Fairness.Jain)
				case sum.Fairness == nil && !strings.Contains(sum.FairnessNoData, "only 1 backend answered"):
					t.Errorf("sticky run: no fairness and fairness_no_data %q does not say why", sum.FairnessNoData)
				}
			}
		})
	}
}

// TestDocsReportCommands runs every `kaload report` line of the guide's
// shell blocks on the recorded recycled run (files renamed as the guide names
// them, its 90s window moved to the recorded scale-up).
func TestDocsReportCommands(t *testing.T) {
	_, recycled := recordedRuns(t)
	src, err := os.ReadFile(filepath.Join(recycled, "hammer-0.kld"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(readDocs(t), "\n") {
		if !strings.HasPrefix(line, "kaload report ") {
			continue
		}
		n++
		dir := t.TempDir()
		var args []string
		for _, a := range strings.Fields(line)[1:] {
			if strings.HasSuffix(a, ".kld") {
				if err := os.WriteFile(filepath.Join(dir, a), src, 0o644); err != nil {
					t.Fatal(err)
				}
				a = filepath.Join(dir, a)
			}
			if a == "90s" {
				a = scaleAt
			}
			args = append(args, a)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		code, out, stderr := runKaload(ctx, args...)
		cancel()
		if code != 0 || !strings.Contains(out, "Verdict:") {
			t.Errorf("%s: exit %d\n%s%s", line, code, out, stderr)
		}
	}
	if n == 0 {
		t.Error("the guide has no kaload report command line")
	}
}
