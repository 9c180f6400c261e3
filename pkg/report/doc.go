// Package report folds results into a Summary (aggregation, fairness,
// timeline, rebalance, verdict), checks expectations against it and renders
// it. Results files themselves are package results.
//
// Data flows one way:
//
//	agg := report.NewAggregator(report.Options{Interval: time.Second})
//	run, err := agg.AddRun(rd.Header()) // one per results file, before its results
//	err = run.AddAll(ctx, rd)           // or run.Add(r) per client.Result
//	sum := agg.Summary()
//	res, ok := report.Check(sum, exps)  // exps from ParseExpectations([]string{"min_share>=0.2"})
//	err = report.Render(w, &report.Report{Summary: sum, Expectations: res}, "json")
//
// Render takes one of Formats; the JSON keys are a contract (docs/design.md).
package report
