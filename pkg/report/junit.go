package report

import (
	"encoding/xml"
	"fmt"
	"io"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes r's expectations as a JUnit XML report, one test case
// per expectation, so CI systems show which assertion failed and by how much.
func WriteJUnit(w io.Writer, r *Report) error {
	s := r.Summary
	suite := junitSuite{Name: "kaload expectations", Tests: len(r.Expectations), Cases: []junitCase{}}
	for _, e := range r.Expectations {
		c := junitCase{Name: e.Expr, Classname: "kaload.expect", SystemOut: "actual: " + e.Actual}
		switch {
		case e.Status == StatusNoData:
			suite.Failures++
			c.Failure = &junitFailure{Message: fmt.Sprintf("NO DATA for %s: %s", e.Expr, e.Reason),
				Text: "an expectation whose metric was not measured is not met; verdict: " + s.Verdict}
		case !e.OK:
			suite.Failures++
			c.Failure = &junitFailure{Message: fmt.Sprintf("expected %s, actual %s", e.Expr, e.Actual),
				Text: "verdict: " + s.Verdict}
		}
		suite.Cases = append(suite.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
