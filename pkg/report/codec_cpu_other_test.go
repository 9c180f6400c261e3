//go:build !unix

package report

func codecCPUTime() int64 { return 0 }
