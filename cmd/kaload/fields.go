package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kaload/kaload/pkg/field"
)

// flagOfField is the one place where the libraries' configuration fields
// meet the command line: per command, the flag that sets each field of the
// Config it passes on (server.Config, client.Config, lab.Config). Libraries
// report bad values as *field.Error in Go field names; namedByFlags turns
// those names into these flags. Indices are dropped before the lookup
// (Scenarios[1].MaxRequests is Scenarios.MaxRequests); a value of several
// flags, comma-separated, names them all.
var flagOfField = map[string]map[string]string{
	"serve": {
		"Hostname":            "hostname",
		"BackendHeader":       "backend-header",
		"MaxRequests":         "max-requests",
		"MaxRequestsJitter":   "max-requests-jitter",
		"MaxConnAge":          "max-conn-age",
		"MaxConnAgeJitter":    "max-conn-age-jitter",
		"MaxConnAgeGrace":     "max-conn-age-grace",
		"CPU":                 "cpu",
		"Delay":               "delay",
		"ResponseSize":        "response-size",
		"Capacity":            "capacity",
		"H2C":                 "h2c",
		"TLSCertFile":         "tls-cert",
		"TLSKeyFile":          "tls-key",
		"ReadTimeout":         "read-timeout",
		"ShutdownGrace":       "shutdown-grace",
		"DrainDelay":          "drain-delay",
		"WebSocketCloseGrace": "ws-close-grace",
		"StreamInterval":      "stream-interval",
	},
	"hammer": {
		"URL":                "url",
		"Connections":        "connections",
		"Duration":           "duration",
		"Requests":           "requests",
		"Rate":               "rate",
		"Timeout":            "timeout",
		"Method":             "method",
		"Header":             "header",
		"Body":               "body",
		"HTTP2":              "http2",
		"H2C":                "h2c",
		"Insecure":           "insecure",
		"MaxRequestsPerConn": "max-requests-per-conn",
		"Streams":            "streams",
		"BackendHeader":      "backend-header",
		"Message":            "message",
		"Subprotocol":        "subprotocol",
		"Compression":        "compression",
		"ConnectRate":        "connect-rate",
		"ReconnectDelay":     "reconnect-delay",
		"Idle":               "idle",
		"PingInterval":       "ping-interval",
		"Call":               "call",
		"ProtoFiles":         "proto",
		"ProtosetFiles":      "protoset",
		"ImportPaths":        "import-path",
		"GRPCStream":         "stream",
		"RootCAs":            "cacert",
	},
	"lab": {
		"Protocol":              "protocol",
		"Scenarios":             "max-requests,max-conn-age",
		"Scenarios.Name":        "max-requests,max-conn-age",
		"Scenarios.MaxRequests": "max-requests",
		"Scenarios.MaxConnAge":  "max-conn-age",
		"Duration":              "duration",
		"Connections":           "connections",
		"Rate":                  "rate",
		"Timeout":               "timeout",
		"PodCapacity":           "pod-capacity",
		"Policy":                "balancer",
		"Seed":                  "seed",
		"StartPods":             "pods",
		"EndPods":               "pods",
		"ScaleAt":               "scale-at",
		"HPA.TargetRPSPerPod":   "target-rps-per-pod",
		"HPA.MaxPods":           "max-pods",
		"HPA.Sync":              "sync",
		"Interval":              "interval",
		"ResultsDir":            "output",
	},
}

// namedByFlags rewrites every *field.Error in err (through errors.Join and
// %w wrapping) to name the flags of command instead of Go fields. show
// turns a flag name into what the user sees; nil means "--" + name. The
// result still unwraps to err's causes.
func namedByFlags(command string, err error, show func(flag string) string) error {
	if err == nil {
		return nil
	}
	if show == nil {
		show = func(flag string) string { return "--" + flag }
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, namedByFlags(command, e, show))
		}
		return errors.Join(out...)
	}
	var fe *field.Error
	if !errors.As(err, &fe) {
		return err
	}
	var names []string
	for _, f := range fe.Fields {
		flags, ok := flagOfField[command][withoutIndices(f)]
		if !ok {
			names = append(names, f) // not set by a flag: the field is all there is to name
			continue
		}
		var shown []string
		for _, fl := range strings.Split(flags, ",") {
			shown = append(shown, show(fl))
		}
		if n := strings.Join(shown, " or "); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	msg := strings.Join(names, " and ") + ": " + fe.Err.Error()
	if err != error(fe) {
		msg = strings.Replace(err.Error(), fe.Error(), msg, 1)
	}
	return &flagError{msg: msg, err: err}
}

// flagError is a library error reworded in flags.
type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }

// withoutIndices drops "[n]" from a field path.
func withoutIndices(path string) string {
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// outputError says which flag named a file that cannot be written. On a
// permission error it also says who kaload runs as, since a volume that
// kaload's user cannot write (a Kubernetes volume without fsGroup) is the
// usual cause.
func outputError(flag, path string, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	dir, _ := filepath.Abs(filepath.Dir(path))
	return fmt.Errorf("%s %s: %w\nkaload runs as uid %d (gid %d), which may not write in %s: make the directory writable "+
		"for that user (in a Kubernetes pod: securityContext.fsGroup: %d, or mount a volume the user owns)",
		flag, path, err, os.Getuid(), os.Getgid(), dir, os.Getgid())
}
