package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kaload/kaload/pkg/server"
)

// TestDesignDocStatesTheContracts: docs/design.md, which code comments cite,
// exists and states what the code uses: the header names and the exit codes.
func TestDesignDocStatesTheContracts(t *testing.T) {
	b, err := os.ReadFile("../../docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, h := range []string{server.DefaultBackendHeader, server.TotalHeader, server.PositionHeader, strings.ToLower(server.DefaultBackendHeader)} {
		if !strings.Contains(doc, "`"+h+"`") {
			t.Errorf("docs/design.md does not name the header %s", h)
		}
	}
	for code, what := range map[int]string{exitOK: "ok", exitRuntime: "runtime error", exitUsage: "usage error", exitExpectFail: "an `--expect` failed"} {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^\| %d \| %s`, code, regexp.QuoteMeta(what))).MatchString(doc) {
			t.Errorf("docs/design.md has no exit code row %d | %s", code, what)
		}
	}
	// Every comment that cites the design cites this file.
	err = filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(src), "DESIGN"+".md") {
			t.Errorf("%s cites the old design notes; the contracts are in docs/design.md", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
