package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperModeEnv makes the test binary, re-executed inside a namespace, act
// as a tiny server or client instead of running tests. It lets the lab's
// plumbing be checked without depending on the kaload binary.
const helperModeEnv = "KALOAD_KERNEL_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperModeEnv); mode != "" {
		if err := runHelper(mode, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func runHelper(mode string, args []string) error {
	// Every helper is bounded even if the test that started it vanished.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch mode {
	case "serve":
		if len(args) != 1 {
			return errors.New("want: serve ADDR")
		}
		return helperServe(ctx, args[0])
	case "dial":
		if len(args) != 2 {
			return errors.New("want: dial URL N")
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > 10000 {
			return fmt.Errorf("request count %q: want 1..10000", args[1])
		}
		return helperDial(ctx, args[0], n, os.Stdout)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// helperServe answers every request with the OS hostname, which the pod's
// UTS namespace sets, in the header kaload uses for backend identity.
func helperServe(ctx context.Context, addr string) error {
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Accept-Request-hostname", host)
			io.WriteString(w, host)
		})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// dialResult is what the dial helper prints: requests per backend.
type dialResult struct {
	Backends map[string]int `json:"backends"`
	Errors   int            `json:"errors"`
	FirstErr string         `json:"first_error,omitempty"`
}

// helperDial sends n requests, each on a new connection, so each one is a
// new choice by the nat table.
func helperDial(ctx context.Context, url string, n int, w io.Writer) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	res := dialResult{Backends: map[string]int{}}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			if res.Errors == 0 {
				res.FirstErr = err.Error()
			}
			res.Errors++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res.Backends[resp.Header.Get("Accept-Request-hostname")]++
	}
	return json.NewEncoder(w).Encode(res)
}
