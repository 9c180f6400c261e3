//go:build unix

package results

import "syscall"

// codecCPUTime is the process's user+system CPU time in nanoseconds: on a
// shared machine it says more about a benchmark than wall time.
func codecCPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
