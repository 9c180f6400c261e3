// Package field says which field of a configuration struct holds a bad
// value, in the field's Go name, so that a program can tell its users in its
// own words: a command-line tool names the flag that set the field.
//
// pkg/client and pkg/server report invalid configurations as *Error values,
// several joined with errors.Join. (pkg/server/recycle imports nothing but
// the standard library and has its own recycle.FieldError.)
package field

import (
	"fmt"
	"strings"
)

// Error is a bad value in one configuration field, or a conflict between
// several fields.
type Error struct {
	// Fields are Go field names, dotted below the top level
	// ("HPA.MaxPods", "Scenarios[1].MaxRequests"): one for a bad value,
	// several for a conflict.
	Fields []string
	// Err says what is wrong without naming the fields.
	Err error
}

// Errorf returns an *Error for the field name; format and args make Err.
func Errorf(name, format string, args ...any) error {
	return &Error{Fields: []string{name}, Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string { return strings.Join(e.Fields, " and ") + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }
