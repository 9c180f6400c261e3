package servertest

import (
	"io"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/kaload/kaload/pkg/server"
)

func TestStartServesUntilStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := Start(t, server.Config{Hostname: "pod-a"})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp, err := c.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get(server.DefaultBackendHeader); got != "pod-a" {
		t.Errorf("backend header %q, want pod-a", got)
	}
	tr.CloseIdleConnections()
	s.Stop()
	s.Stop() // idempotent
	if _, err := c.Get(s.URL); err == nil {
		t.Error("the server still answers after Stop")
	}
}
