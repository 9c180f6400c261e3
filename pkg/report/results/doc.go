// Package results is the results-file format: written by kaload hammer while
// the run goes on (Writer) and read back by kaload report (Reader).
//
// A file has two forms: a compact binary form (the default, see binary.go:
// versioned, CRC-checked blocks, whole records recovered from a cut file) and
// JSON Lines (chosen by a ".jsonl" name, for people who want jq). Readers
// detect the form.
package results
