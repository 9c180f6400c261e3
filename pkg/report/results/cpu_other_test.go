//go:build !unix

package results

func codecCPUTime() int64 { return 0 }
