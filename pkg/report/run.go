package report

import "github.com/kaload/kaload/pkg/report/results"

// AddRun registers the run a results file's header describes and makes it
// the one Add counts towards. Offsets of every run are aligned on the
// earliest Header.Start, so add all headers before the first result when
// merging files. The run's label and connection count appear in the summary.
func (a *Aggregator) AddRun(h results.Header) error {
	return a.addRun(h.Label, h.URL, h.Start, h.Connections)
}
