//go:build unix

package report

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used: on a loaded machine a
// benchmark's wall time mostly measures the wait for a core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
