package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes are a contract with scripts and CI (docs/design.md).
const (
	exitOK         = 0
	exitRuntime    = 1
	exitUsage      = 2
	exitExpectFail = 3
)

// streams are the terminals and pipes a command may write to; tests replace them.
type streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// ErrTTY reports whether Err is an interactive terminal (progress bars go there only).
	ErrTTY bool
	// Abort is closed on a second interrupt (the first cancels the command's
	// context): the hammer then ends its requests in flight at once.
	Abort <-chan struct{}
}

func newStreams() *streams {
	return &streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, ErrTTY: term.IsTerminal(int(os.Stderr.Fd()))}
}

// exitError carries an exit code up to run, which maps it once.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports bad input from the user: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// errExpectFailed is returned after the report is printed when an --expect failed: exit code 3.
var errExpectFailed = &exitError{code: exitExpectFail, err: errors.New("expectations failed")}

func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "kaload",
		Short: "Prove that a Kubernetes service spreads keep-alive traffic over new pods",
		Long: `kaload shows whether keep-alive clients reach the pods an autoscaler adds.

Kubernetes balances connections, not requests: a client that keeps its
connections alive stays on the old pods after a scale-up. kaload is both a
server that recycles connections (Connection: close / GOAWAY after N requests)
and a keep-alive load generator that records which backend answered each
request, plus a report with CI assertions.`,
		Example: `  kaload lab                                  # the whole experiment on this machine
  kaload serve --max-requests 100             # a recycling test server on :8080
  kaload hammer --url http://svc:8080/ -c 50 -d 60s -o run.kld
  kaload report run.kld --expect 'min_share>=0.2'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	// --version prints what 'kaload version' does (the line has no template actions).
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetIn(s.In)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
	})
	root.AddCommand(
		newCmdServe(s, nil),
		newCmdHammer(s, nil),
		newCmdReport(s, nil),
		newCmdLab(s, nil),
		newCmdVersion(s),
	)
	return root
}

// run executes the command line and maps its outcome to an exit code.
func run(ctx context.Context, args []string, s *streams) int {
	root := newRootCmd(s)
	root.SetArgs(args)
	started := false
	root.PersistentPreRun = func(*cobra.Command, []string) { started = true }
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		if ee != errExpectFailed {
			fmt.Fprintln(s.Err, "kaload:", err)
		}
		return ee.code
	case !started:
		// Cobra rejected the command line before any command ran: unknown
		// command, wrong number of arguments, and the like.
		fmt.Fprintf(s.Err, "kaload: %v\nSee 'kaload --help'.\n", err)
		return exitUsage
	default:
		fmt.Fprintln(s.Err, "kaload:", err)
		return exitRuntime
	}
}
