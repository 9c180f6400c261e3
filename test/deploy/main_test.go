// Package deploy checks what ships beside the code: the release build
// (scripts/build.sh, the Dockerfile) and the Kubernetes manifests in
// deploy/kubernetes, rendered with the real kustomize library, decoded
// strictly into the k8s.io/api types and run against the real kaload binary.
//
// It is a module of its own so that kustomize, k8s.io/api and the Dockerfile
// parser stay out of kaload's go.mod: `cd test/deploy && go test ./...`. It
// imports no kaload package (it runs the binary and reads its JSON), so a
// dependency kaload adds never needs a go mod tidy here.
package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const (
	repoRoot    = "../.."
	deployDir   = repoRoot + "/deploy/kubernetes"
	testVersion = "v9.8.7-buildtest"
)

// kaloadBin is the binary scripts/build.sh built for this run.
var kaloadBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kaload-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		kaloadBin = filepath.Join(dir, "kaload")
		if err := build(kaloadBin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// build runs the release recipe as the Dockerfile does, with only VERSION
// and OUT set (and no GOFLAGS from a developer's shell).
func build(out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, repoRoot+"/scripts/build.sh")
	cmd.Env = append(os.Environ(), "GOFLAGS=", "VERSION="+testVersion, "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/build.sh: %w\n%s", err, b)
	}
	return nil
}
