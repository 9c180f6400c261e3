// Command apicount prints the exported identifiers of every public package
// (every directory under pkg/ of a source tree, tests excluded): top-level
// types, functions, methods of exported types, constants and variables.
//
//	go run ./bench/cmd/apicount                 # this tree
//	git archive 57eaec1 pkg | tar -x -C /tmp/old && go run ./bench/cmd/apicount /tmp/old
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// count is one package's exported identifiers by kind.
type count struct{ types, funcs, methods, consts, vars int }

func (c count) total() int { return c.types + c.funcs + c.methods + c.consts + c.vars }

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	counts, err := countTree(filepath.Join(root, "pkg"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "apicount:", err)
		os.Exit(1)
	}
	var dirs []string
	for d := range counts {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var sum count
	fmt.Printf("%-28s %5s %5s %5s %5s %5s %6s\n", "package", "types", "funcs", "meths", "const", "vars", "total")
	for _, d := range dirs {
		c := counts[d]
		fmt.Printf("%-28s %5d %5d %5d %5d %5d %6d\n", d, c.types, c.funcs, c.methods, c.consts, c.vars, c.total())
		sum = count{sum.types + c.types, sum.funcs + c.funcs, sum.methods + c.methods, sum.consts + c.consts, sum.vars + c.vars}
	}
	fmt.Printf("%-28s %5d %5d %5d %5d %5d %6d\n", "all", sum.types, sum.funcs, sum.methods, sum.consts, sum.vars, sum.total())
}

// countTree counts every package directory below dir, keyed by its path
// from dir's parent ("pkg/client"); internal directories are not public.
func countTree(dir string) (map[string]count, error) {
	out := map[string]count{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "internal" || d.Name() == "testdata" {
			return filepath.SkipDir
		}
		c, n, err := countDir(path)
		if err != nil {
			return err
		}
		if n > 0 {
			rel, _ := filepath.Rel(filepath.Dir(dir), path)
			out[filepath.ToSlash(rel)] = c
		}
		return nil
	})
	return out, err
}

// countDir counts the exported identifiers of the non-test Go files in dir;
// n is the number of files read.
func countDir(dir string) (c count, n int, err error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return c, 0, err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return c, n, err
		}
		n++
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				switch {
				case !d.Name.IsExported():
				case d.Recv == nil:
					c.funcs++
				case receiverExported(d.Recv):
					c.methods++
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							c.types++
						}
					case *ast.ValueSpec:
						for _, id := range s.Names {
							if !id.IsExported() {
								continue
							}
							if d.Tok == token.CONST {
								c.consts++
							} else {
								c.vars++
							}
						}
					}
				}
			}
		}
	}
	return c, n, nil
}

// receiverExported reports whether a method's receiver type is exported
// (a method of an unexported type is not part of the API).
func receiverExported(recv *ast.FieldList) bool {
	t := recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.IsExported()
		default:
			return false
		}
	}
}
