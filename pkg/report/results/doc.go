// Package results is the results-file format: written by kaload hammer while
// the run goes on (Writer: CreateFile, NewWriter) and read back by kaload
// report (Reader: OpenFile, NewReader).
//
// A file has two forms: a compact binary form (the default: versioned,
// CRC-checked blocks, whole records recovered from a cut file) and JSON Lines
// (chosen by a ".jsonl" name, for people who want jq). Readers detect the
// form, accept every older version, and return ErrTruncated (wrapped) after
// the last whole record of a file cut short; a damaged file is a
// *CorruptError with its byte offset or line. The format, its versioning and
// its recovery are a contract: docs/design.md, and the byte-level layout at
// the top of binary.go.
package results
