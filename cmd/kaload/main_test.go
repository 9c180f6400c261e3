package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The commands start servers, engines, progress bars and file flushers:
// none of their goroutines may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
