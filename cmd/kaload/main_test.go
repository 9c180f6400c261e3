package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// The commands start servers, engines, progress bars and file flushers:
// none of their goroutines may outlive a test.
//
// With KALOAD_TEST_MAIN=1 the test binary is kaload itself (main with the
// real signal handling), for tests that need a process: signals, pipes.
func TestMain(m *testing.M) {
	if os.Getenv("KALOAD_TEST_MAIN") == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}
