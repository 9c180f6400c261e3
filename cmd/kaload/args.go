package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// noArgs rejects positional arguments with what they are, instead of
// cobra's `unknown command "extra"` (a command without subcommands has
// none to be unknown).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	what := "unexpected argument"
	if len(args) > 1 {
		what = "unexpected arguments"
	}
	return usageErrorf("%s %s: %s takes flags only\nUsage: %s\nSee '%s --help'.",
		what, quoteAll(args), cmd.CommandPath(), cmd.UseLine(), cmd.CommandPath())
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// listFlag is a comma-separated list for a flag; unlike pflag's intSlice
// and durationSlice its errors name the bad item in plain words (no
// strconv or time text) and its help shows no Go type. A repeated flag adds
// to the list; the first use replaces the default.
type listFlag[T any] struct {
	v      *[]T
	set    bool
	typ    string
	parse  func(string) (T, error)
	format func(T) string
}

func (l *listFlag[T]) Set(s string) error {
	var out []T
	for _, item := range strings.Split(s, ",") {
		v, err := l.parse(strings.TrimSpace(item))
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	if l.set {
		out = append(*l.v, out...)
	}
	*l.v, l.set = out, true
	return nil
}

func (l *listFlag[T]) String() string {
	if l == nil || l.v == nil {
		return ""
	}
	parts := make([]string, len(*l.v))
	for i, v := range *l.v {
		parts[i] = l.format(v)
	}
	return strings.Join(parts, ",")
}

func (l *listFlag[T]) Type() string { return l.typ }

// newIntList is a list of whole numbers ("0,5,100").
func newIntList(p *[]int, def []int) *listFlag[int] {
	*p = append([]int(nil), def...)
	return &listFlag[int]{v: p, typ: "N,N...", format: strconv.Itoa, parse: func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number (want a comma-separated list such as 0,5,100)", s)
		}
		return n, nil
	}}
}

// newDurationList is a list of durations ("2s,30s").
func newDurationList(p *[]time.Duration, def []time.Duration) *listFlag[time.Duration] {
	*p = append([]time.Duration(nil), def...)
	return &listFlag[time.Duration]{v: p, typ: "D,D...", format: time.Duration.String, parse: func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration with a unit (want a comma-separated list such as 2s,30s)", s)
		}
		return d, nil
	}}
}
