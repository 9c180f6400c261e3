package main

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Dockerfile is the single source of truth for the release build line:
// these tests read it instead of repeating it. No container engine runs in
// CI, so `docker build` itself is not exercised; the build command, the
// runtime stage's shape and the binary's static linking are.

const dockerfilePath = "../../Dockerfile"

// dockerInstr is one Dockerfile instruction with continuation lines joined.
type dockerInstr struct {
	Line  int    // 1-based line where the instruction starts
	Cmd   string // upper case: FROM, RUN, ...
	Args  string // the rest, continuation lines joined with a space
	Stage int    // 0-based index of the FROM stage it belongs to; -1 before the first FROM
}

// parseDockerfile splits a Dockerfile into instructions. Comment lines (also
// inside a continuation, as Docker allows) and blank lines are dropped.
func parseDockerfile(text string) ([]dockerInstr, error) {
	var out []dockerInstr
	var cur strings.Builder
	start, stage := 0, -1
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		} else {
			cur.WriteByte(' ')
		}
		cont := strings.HasSuffix(line, `\`)
		cur.WriteString(strings.TrimSpace(strings.TrimSuffix(line, `\`)))
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, dockerInstr{Line: start, Cmd: cmd, Args: strings.TrimSpace(args), Stage: stage})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: instruction continues past the end of the file", start)
	}
	return out, nil
}

// shellWords splits a POSIX shell command line into words the way sh would
// for a single simple command, expanding $NAME and ${NAME} through lookup.
// Operators (&& ; | < > and the like), command substitution and ${NAME:-x}
// forms are rejected: the build line must stay one plain command.
func shellWords(s string, lookup func(name string) (string, error)) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'
		j := i + 1
		if j < len(s) && s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				return 0, fmt.Errorf("offset %d: unterminated ${", i)
			}
			name := s[j+1 : j+end]
			if !isShellName(name) {
				return 0, fmt.Errorf("offset %d: unsupported expansion ${%s}", i, name)
			}
			v, err := lookup(name)
			if err != nil {
				return 0, fmt.Errorf("offset %d: %w", i, err)
			}
			w.WriteString(v)
			return j + end + 1, nil
		}
		k := j
		for k < len(s) && isShellName(s[j:k+1]) {
			k++
		}
		if k == j {
			return 0, fmt.Errorf("offset %d: unsupported use of $", i)
		}
		v, err := lookup(s[j:k])
		if err != nil {
			return 0, fmt.Errorf("offset %d: %w", i, err)
		}
		w.WriteString(v)
		return k, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("offset %d: unterminated single quote", i)
			}
			w.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated double quote")
				}
				if s[i] == '"' {
					i++
					break
				}
				switch s[i] {
				case '\\':
					if i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
						w.WriteByte(s[i+1])
						i += 2
						continue
					}
					w.WriteByte('\\')
					i++
				case '$':
					next, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = next
				case '`':
					return nil, fmt.Errorf("offset %d: command substitution is not supported", i)
				default:
					w.WriteByte(s[i])
					i++
				}
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("offset %d: trailing backslash", i)
			}
			w.WriteByte(s[i+1])
			inWord = true
			i += 2
		case c == '$':
			next, err := expand(i)
			if err != nil {
				return nil, err
			}
			inWord = true
			i = next
		case strings.IndexByte("&;|<>()`*?[#~", c) >= 0:
			return nil, fmt.Errorf("offset %d: shell operator or pattern %q is not supported in the build line", i, c)
		default:
			w.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// singleQuote quotes s for sh so that shellWords gives it back unchanged.
func singleQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dockerBuildLine is the RUN instruction that builds kaload, taken apart.
type dockerBuildLine struct {
	Instr  dockerInstr
	Assign []string // leading NAME=VALUE words, expanded
	Argv   []string // go build ...
	Refs   []string // variables the line expands
}

// findBuildLine returns the one RUN instruction that calls `go build`,
// expanded with the ARG values visible in its stage, overridden by args.
func findBuildLine(instrs []dockerInstr, args map[string]string) (*dockerBuildLine, error) {
	var found *dockerBuildLine
	for _, in := range instrs {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("line %d: a second RUN with go build (first on line %d)", in.Line, found.Instr.Line)
		}
		// A global ARG (before the first FROM) is visible in a stage only when
		// redeclared there, and then keeps its global default unless given a
		// new one: Docker's rules, kept so the test catches a mistake.
		global := map[string]string{}
		visible := map[string]string{}
		for _, a := range instrs {
			if a.Cmd != "ARG" || a.Line > in.Line || (a.Stage != -1 && a.Stage != in.Stage) {
				continue
			}
			for _, decl := range strings.Fields(a.Args) {
				name, def, hasDef := strings.Cut(decl, "=")
				switch {
				case a.Stage == -1:
					global[name] = def
				case hasDef:
					visible[name] = def
				default:
					visible[name] = global[name]
				}
			}
		}
		bl := &dockerBuildLine{Instr: in}
		lookup := func(name string) (string, error) {
			v, ok := visible[name]
			if !ok {
				return "", fmt.Errorf("variable %s is not declared with ARG in this stage (Docker would expand it to nothing)", name)
			}
			bl.Refs = append(bl.Refs, name)
			if o, ok := args[name]; ok {
				return o, nil
			}
			return v, nil
		}
		rest := in.Args
		for strings.HasPrefix(rest, "--") { // RUN flags such as --mount=...
			_, after, _ := strings.Cut(rest, " ")
			rest = strings.TrimSpace(after)
		}
		words, err := shellWords(rest, lookup)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", in.Line, err)
		}
		for len(words) > 0 {
			name, _, ok := strings.Cut(words[0], "=")
			if !ok || !isShellName(name) {
				break
			}
			bl.Assign = append(bl.Assign, words[0])
			words = words[1:]
		}
		bl.Argv = words
		found = bl
	}
	if found == nil {
		return nil, errors.New("no RUN instruction with go build")
	}
	return found, nil
}

func readDockerfile(t *testing.T) []dockerInstr {
	t.Helper()
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	instrs, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	return instrs
}

// outputFlag returns the index in argv of the -o value.
func outputFlag(argv []string) (int, error) {
	for i, a := range argv {
		switch {
		case a == "-o" || a == "--o":
			if i+1 == len(argv) {
				return 0, errors.New("-o without a value")
			}
			return i + 1, nil
		case strings.HasPrefix(a, "-o="):
			return i, nil
		}
	}
	return 0, errors.New("no -o flag")
}

func TestDockerfileBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release binary; skipped with -short")
	}
	// A cold build of every dependency: overlap it with the package's other tests.
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
	const wantVersion = "v9.8.7-buildtest"
	bl, err := findBuildLine(readDockerfile(t), map[string]string{
		"VERSION":    wantVersion,
		"TARGETOS":   runtime.GOOS,
		"TARGETARCH": runtime.GOARCH,
	})
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	if !slices.Contains(bl.Assign, "CGO_ENABLED=0") {
		t.Fatalf("%s:%d: build line must set CGO_ENABLED=0, sets %q", dockerfilePath, bl.Instr.Line, bl.Assign)
	}
	if len(bl.Argv) < 2 || bl.Argv[0] != "go" || bl.Argv[1] != "build" {
		t.Fatalf("%s:%d: build line runs %q, want go build ...", dockerfilePath, bl.Instr.Line, bl.Argv)
	}
	if !slices.Contains(bl.Refs, "VERSION") || !strings.Contains(strings.Join(bl.Argv, " "), "-X main.version="+wantVersion) {
		t.Fatalf("%s:%d: build line must pass -ldflags \"-X main.version=${VERSION}\": %q", dockerfilePath, bl.Instr.Line, bl.Argv)
	}
	argv := slices.Clone(bl.Argv)
	oi, err := outputFlag(argv)
	if err != nil {
		t.Fatalf("%s:%d: %v", dockerfilePath, bl.Instr.Line, err)
	}
	bin := filepath.Join(t.TempDir(), "kaload")
	if strings.HasPrefix(argv[oi], "-o=") {
		argv[oi] = "-o=" + bin
	} else {
		argv[oi] = bin
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", argv[1:]...)
	cmd.Dir = "../.."
	// The image build sees no GOFLAGS from a developer's shell either.
	cmd.Env = append(append(os.Environ(), "GOFLAGS="), bl.Assign...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s:%d: %s %s: %v\n%s", dockerfilePath, bl.Instr.Line, strings.Join(bl.Assign, " "), strings.Join(argv, " "), err, out)
	}

	f, err := elf.Open(bin)
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

	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	if !strings.Contains(string(out), wantVersion) {
		t.Errorf("kaload version printed %q, want it to contain the build arg %q", out, wantVersion)
	}
}

// TestDockerfileRuntimeStage checks the image contract the manifests rely on:
// an exec-form ENTRYPOINT kaload that is on PATH, serve by default, a numeric
// non-root user (runAsNonRoot can only verify a number), a builder at least as
// new as go.mod asks, and a build context that keeps the sources.
func TestDockerfileRuntimeStage(t *testing.T) {
	instrs := readDockerfile(t)
	bl, err := findBuildLine(instrs, map[string]string{"VERSION": "x", "TARGETOS": "", "TARGETARCH": ""})
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	oi, err := outputFlag(bl.Argv)
	if err != nil {
		t.Fatal(err)
	}
	builtAt := strings.TrimPrefix(bl.Argv[oi], "-o=")

	last := instrs[len(instrs)-1].Stage
	if last < 1 {
		t.Fatalf("%s: want a multi-stage build, found %d stage(s)", dockerfilePath, last+1)
	}
	if bl.Instr.Stage == last {
		t.Errorf("%s:%d: the binary is built in the runtime stage; want a separate build stage", dockerfilePath, bl.Instr.Line)
	}
	final := map[string][]dockerInstr{}
	for _, in := range instrs {
		if in.Stage == last {
			final[in.Cmd] = append(final[in.Cmd], in)
		}
	}
	one := func(cmd string) dockerInstr {
		t.Helper()
		if len(final[cmd]) == 0 {
			t.Fatalf("%s: runtime stage has no %s", dockerfilePath, cmd)
		}
		return final[cmd][len(final[cmd])-1] // the last one wins in Docker
	}
	execForm := func(in dockerInstr) []string {
		t.Helper()
		var v []string
		if err := json.Unmarshal([]byte(in.Args), &v); err != nil {
			t.Fatalf("%s:%d: %s must be in exec (JSON) form: %v", dockerfilePath, in.Line, in.Cmd, err)
		}
		return v
	}
	if got := execForm(one("ENTRYPOINT")); !slices.Equal(got, []string{"kaload"}) {
		t.Errorf("ENTRYPOINT = %q, want [\"kaload\"]", got)
	}
	if got := execForm(one("CMD")); !slices.Equal(got, []string{"serve"}) {
		t.Errorf("CMD = %q, want [\"serve\"]", got)
	}

	user := one("USER")
	uid, gid, _ := strings.Cut(user.Args, ":")
	for _, id := range []string{uid, gid} {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("%s:%d: USER %s: want numeric non-zero uid:gid", dockerfilePath, user.Line, user.Args)
		}
	}

	// The copied binary must land in a directory on the image's PATH.
	var path []string
	for _, in := range final["ENV"] {
		if v, ok := strings.CutPrefix(in.Args, "PATH="); ok {
			path = strings.Split(v, ":")
		}
	}
	copied := ""
	for _, in := range final["COPY"] {
		f := strings.Fields(in.Args)
		if len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[1] == builtAt {
			copied = f[2]
		}
	}
	if copied == "" {
		t.Fatalf("%s: runtime stage does not COPY --from the build output %s", dockerfilePath, builtAt)
	}
	if filepath.Base(copied) != "kaload" || !slices.Contains(path, filepath.Dir(copied)) {
		t.Errorf("%s: binary copied to %s, which is not kaload on PATH %q", dockerfilePath, copied, path)
	}

	expose := one("EXPOSE")
	listen := newCmdServe(&streams{}, nil).Flags().Lookup("listen").DefValue
	if _, port, _ := strings.Cut(listen, ":"); strings.TrimSuffix(expose.Args, "/tcp") != port {
		t.Errorf("%s:%d: EXPOSE %s, but kaload serve listens on %s by default", dockerfilePath, expose.Line, expose.Args, listen)
	}

	// The Go in the build image must satisfy go.mod's go directive.
	var goVersion string
	for _, in := range instrs {
		if in.Cmd == "ARG" && in.Stage == -1 {
			if v, ok := strings.CutPrefix(in.Args, "GO_VERSION="); ok {
				goVersion = v
			}
		}
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var modGo string
	for l := range strings.SplitSeq(string(mod), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			modGo = v
		}
	}
	if goVersion == "" || modGo == "" || compareDotted(goVersion, modGo) < 0 {
		t.Errorf("Dockerfile GO_VERSION %q is older than go.mod's go %q", goVersion, modGo)
	}

	// The build context must keep what go build reads.
	ign, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(ign), "\n") {
		p := strings.TrimPrefix(strings.TrimSpace(l), "/")
		if p == "" || strings.HasPrefix(p, "#") || strings.HasPrefix(p, "!") {
			continue
		}
		for _, keep := range []string{"go.mod", "go.sum", "cmd", "cmd/kaload", "cmd/kaload/main.go", "pkg", "pkg/server/server.go"} {
			if ok, _ := filepath.Match(p, keep); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", l, keep)
			}
		}
	}
}

// compareDotted compares versions like 1.26.8 numerically, field by field.
func compareDotted(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func TestShellWords(t *testing.T) {
	vars := map[string]string{"V": "1.2", "OS": "linux", "EMPTY": ""}
	lookup := func(n string) (string, error) {
		v, ok := vars[n]
		if !ok {
			return "", fmt.Errorf("undefined %s", n)
		}
		return v, nil
	}
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  go  build\t./cmd ", want: []string{"go", "build", "./cmd"}},
		{in: `CGO_ENABLED=0 GOOS=${OS} go build -ldflags "-s -w -X main.version=${V}" -o /out/k ./cmd/kaload`,
			want: []string{"CGO_ENABLED=0", "GOOS=linux", "go", "build", "-ldflags", "-s -w -X main.version=1.2", "-o", "/out/k", "./cmd/kaload"}},
		{in: `a'b c'"d $V"e`, want: []string{"ab cd 1.2e"}},
		{in: `'$V' "\$V" \$V $V`, want: []string{"$V", "$V", "$V", "1.2"}},
		{in: `x=$EMPTY y`, want: []string{"x=", "y"}},
		{in: `"" ''`, want: []string{"", ""}},
		{in: `"a\"b\\c\d"`, want: []string{`a"b\c\d`}},
		{in: `a\ b`, want: []string{"a b"}},
		{in: `$V_x`, wantErr: "undefined V_x"},
		{in: `${V:-x}`, wantErr: "unsupported expansion"},
		{in: `${V`, wantErr: "unterminated ${"},
		{in: `go build && rm -rf x`, wantErr: "shell operator"},
		{in: `go build; x`, wantErr: "shell operator"},
		{in: "a `id`", wantErr: "shell operator"},
		{in: `"$(id)"`, wantErr: "unsupported use of $"},
		{in: `'open`, wantErr: "unterminated single quote"},
		{in: `"open`, wantErr: "unterminated double quote"},
		{in: `end\`, wantErr: "trailing backslash"},
		{in: `$UNDEF`, wantErr: "undefined UNDEF"},
	}
	for _, tt := range tests {
		got, err := shellWords(tt.in, lookup)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("shellWords(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	text := "# syntax=docker/dockerfile:1\nARG A=1\n\nFROM x AS b\nRUN one \\\n  # a comment inside\n  two\nfrom scratch\nCMD [\"serve\"]\n"
	got, err := parseDockerfile(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []dockerInstr{
		{Line: 2, Cmd: "ARG", Args: "A=1", Stage: -1},
		{Line: 4, Cmd: "FROM", Args: "x AS b", Stage: 0},
		{Line: 5, Cmd: "RUN", Args: "one two", Stage: 0},
		{Line: 8, Cmd: "FROM", Args: "scratch", Stage: 1},
		{Line: 9, Cmd: "CMD", Args: `["serve"]`, Stage: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseDockerfile:\n got %+v\nwant %+v", got, want)
	}
	if _, err := parseDockerfile("RUN a \\\n"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("dangling continuation: err = %v, want one naming line 1", err)
	}
}

func TestFindBuildLineErrors(t *testing.T) {
	tests := []struct{ name, text, wantErr string }{
		{"none", "FROM x\nRUN echo\n", "no RUN instruction with go build"},
		{"two", "FROM x\nRUN go build .\nRUN go build ./x\n", "line 3: a second RUN"},
		{"undeclared", "FROM x\nRUN go build -ldflags \"-X main.version=${VERSION}\" .\n", "VERSION is not declared with ARG"},
		// A global ARG is not visible in a stage that does not redeclare it.
		{"global only", "ARG VERSION=1\nFROM x\nRUN go build -ldflags \"-X main.version=${VERSION}\" .\n", "VERSION is not declared"},
		{"operator", "FROM x\nARG V\nRUN go build . && strip kaload\n", "line 3: offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			instrs, err := parseDockerfile(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			_, err = findBuildLine(instrs, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// A global ARG redeclared in the stage keeps its global default.
	instrs, _ := parseDockerfile("ARG V=7\nFROM x\nARG V\nRUN A=${V} go build .\n")
	bl, err := findBuildLine(instrs, nil)
	if err != nil || !slices.Equal(bl.Assign, []string{"A=7"}) || !slices.Equal(bl.Argv, []string{"go", "build", "."}) {
		t.Errorf("redeclared global ARG: %+v, %v", bl, err)
	}
}

// FuzzShellWords: the splitter never panics, and words it returns survive a
// quote-and-split round trip.
func FuzzShellWords(f *testing.F) {
	for _, s := range []string{
		`CGO_ENABLED=0 go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/kaload ./cmd/kaload`,
		`a'b'"c$V" \x`, `"\$\\\"" '`, `${`, `$`, "\"a\nb\"",
	} {
		f.Add(s)
	}
	lookup := func(n string) (string, error) {
		if n == "V" {
			return "v'1 \"2", nil
		}
		return "", fmt.Errorf("undefined %s", n)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := shellWords(s, lookup)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = singleQuote(w)
		}
		again, err := shellWords(strings.Join(quoted, " "), lookup)
		if err != nil {
			t.Fatalf("re-splitting quoted %q: %v", words, err)
		}
		if !slices.Equal(again, words) {
			t.Fatalf("round trip: %q -> %q", words, again)
		}
	})
}
