// Package report owns the results-file codec, aggregation, fairness,
// timeline, expectations and renderers.
//
// A results file is written by kaload hammer while the run goes on (Writer)
// and read back by kaload report (Reader). It has two forms: a compact binary
// form (the default, see codec_binary.go) and JSON Lines (chosen by a
// ".jsonl" name, for people who want jq). Readers detect the form.
package report
