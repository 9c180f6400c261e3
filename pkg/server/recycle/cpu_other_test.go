//go:build !unix

package recycle

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
