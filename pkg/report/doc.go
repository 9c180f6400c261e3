// Package report folds results into a Summary (aggregation, fairness,
// timeline, rebalance, verdict), checks expectations against it and renders
// it. Results files themselves are package results.
package report
