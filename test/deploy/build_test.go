package deploy

import (
	"context"
	"debug/elf"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"golang.org/x/mod/modfile"
)

// TestBuildIsStatic: scripts/build.sh (which TestMain ran) makes a static
// binary that knows its version. No container engine runs in CI, so
// `docker build` itself is not exercised; the recipe it runs is.
func TestBuildIsStatic(t *testing.T) {
	f, err := elf.Open(kaloadBin)
	if err != nil {
		t.Fatalf("built binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Errorf("binary has a .dynamic section")
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary imports shared libraries %q (err %v)", libs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kaloadBin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("kaload version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), testVersion) {
		t.Errorf("kaload version printed %q, want the VERSION given to scripts/build.sh, %q", out, testVersion)
	}
}

// instr is one Dockerfile instruction, as buildkit parses it.
type instr struct {
	line  int
	cmd   string   // lower case: from, run, ...
	args  []string // the words after the instruction (exec form: the JSON array's items)
	flags []string // --from=build, --mount=...
	json  bool     // exec (JSON) form
	stage int      // 0-based FROM stage; -1 before the first FROM
}

func readDockerfile(t *testing.T) []instr {
	t.Helper()
	f, err := os.Open(repoRoot + "/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	var out []instr
	stage := -1
	for _, n := range res.AST.Children {
		cmd := strings.ToLower(n.Value)
		if cmd == "from" {
			stage++
		}
		in := instr{line: n.StartLine, cmd: cmd, flags: n.Flags, json: n.Attributes["json"], stage: stage}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		out = append(out, in)
	}
	return out
}

// TestDockerfile checks the image contract the manifests rely on: the build
// stage runs scripts/build.sh (no flags of its own), an exec-form ENTRYPOINT
// kaload on PATH, serve by default, a numeric non-root user (runAsNonRoot
// can only verify a number), the port kaload serve listens on, a builder at
// least as new as go.mod asks, and a build context that keeps the sources.
func TestDockerfile(t *testing.T) {
	instrs := readDockerfile(t)
	last := instrs[len(instrs)-1].stage
	if last < 1 {
		t.Fatalf("Dockerfile: want a multi-stage build, found %d stage(s)", last+1)
	}
	var builtAt string
	final := map[string][]instr{}
	for _, in := range instrs {
		if in.stage == last {
			final[in.cmd] = append(final[in.cmd], in)
		}
		if in.cmd != "run" {
			continue
		}
		line := strings.Join(in.args, " ")
		if strings.Contains(line, "go build") {
			t.Errorf("Dockerfile:%d: runs go build itself; the build flags belong in scripts/build.sh", in.line)
		}
		if strings.Contains(line, "scripts/build.sh") {
			if in.stage == last {
				t.Errorf("Dockerfile:%d: builds in the runtime stage; want a separate build stage", in.line)
			}
			for _, v := range []string{"VERSION=${VERSION}", "GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}"} {
				if !strings.Contains(line, v) {
					t.Errorf("Dockerfile:%d: scripts/build.sh without %s", in.line, v)
				}
			}
			if m := regexp.MustCompile(`OUT=(\S+)`).FindStringSubmatch(line); m != nil {
				builtAt = m[1]
			}
		}
	}
	if builtAt == "" {
		t.Fatal("Dockerfile: no RUN ... OUT=PATH scripts/build.sh in a build stage")
	}
	one := func(cmd string) instr {
		t.Helper()
		if len(final[cmd]) == 0 {
			t.Fatalf("Dockerfile: runtime stage has no %s", strings.ToUpper(cmd))
		}
		return final[cmd][len(final[cmd])-1] // the last one wins in Docker
	}
	for _, c := range []struct {
		cmd  string
		want []string
	}{{"entrypoint", []string{"kaload"}}, {"cmd", []string{"serve"}}} {
		in := one(c.cmd)
		if !in.json || !slices.Equal(in.args, c.want) {
			t.Errorf("Dockerfile:%d: %s %q (exec form %v), want exec form %q", in.line, strings.ToUpper(c.cmd), in.args, in.json, c.want)
		}
	}
	user := one("user")
	uid, gid, _ := strings.Cut(strings.Join(user.args, ""), ":")
	for _, id := range []string{uid, gid} {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("Dockerfile:%d: USER %s: want numeric non-zero uid:gid", user.line, user.args)
		}
	}

	// The copied binary must land in a directory on the image's PATH.
	var path []string
	for _, in := range final["env"] {
		for i := 0; i+1 < len(in.args); i += 2 {
			if in.args[i] == "PATH" {
				path = strings.Split(in.args[i+1], ":")
			}
		}
	}
	copied := ""
	for _, in := range final["copy"] {
		if slices.ContainsFunc(in.flags, func(f string) bool { return strings.HasPrefix(f, "--from=") }) && len(in.args) == 2 && in.args[0] == builtAt {
			copied = in.args[1]
		}
	}
	if copied == "" {
		t.Fatalf("Dockerfile: runtime stage does not COPY --from the build output %s", builtAt)
	}
	if filepath.Base(copied) != "kaload" || !slices.Contains(path, filepath.Dir(copied)) {
		t.Errorf("Dockerfile: binary copied to %s, which is not kaload on PATH %q", copied, path)
	}

	expose := one("expose")
	_, port, _ := strings.Cut(serveHelp(t).defaults["listen"], ":")
	if len(expose.args) != 1 || strings.TrimSuffix(expose.args[0], "/tcp") != port {
		t.Errorf("Dockerfile:%d: EXPOSE %s, but kaload serve listens on port %s by default", expose.line, expose.args, port)
	}

	// The Go in the build image must satisfy go.mod's go directive.
	var goVersion string
	for _, in := range instrs {
		if in.cmd == "arg" && in.stage == -1 && len(in.args) == 1 {
			if v, ok := strings.CutPrefix(in.args[0], "GO_VERSION="); ok {
				goVersion = v
			}
		}
	}
	b, err := os.ReadFile(repoRoot + "/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", b, nil)
	if err != nil || mf.Go == nil {
		t.Fatalf("go.mod: %v", err)
	}
	if goVersion == "" || version.Compare("go"+goVersion, "go"+mf.Go.Version) < 0 {
		t.Errorf("Dockerfile GO_VERSION %q is older than go.mod's go %q", goVersion, mf.Go.Version)
	}

	// The build context must keep what the build reads.
	ign, err := os.ReadFile(repoRoot + "/.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(ign), "\n") {
		p := strings.TrimPrefix(strings.TrimSpace(l), "/")
		if p == "" || strings.HasPrefix(p, "#") || strings.HasPrefix(p, "!") {
			continue
		}
		for _, keep := range []string{"go.mod", "go.sum", "scripts", "scripts/build.sh", "cmd", "cmd/kaload", "cmd/kaload/main.go", "pkg", "pkg/server/server.go"} {
			if ok, _ := filepath.Match(p, keep); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", l, keep)
			}
		}
	}
}
