package recycle_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/kaload/kaload/pkg/server/recycle"
)

// Add connection recycling to any net/http server: wrap the handler and
// install the connection hooks. Here every connection carries at most two
// requests; the client reconnects transparently.
func ExampleRecycler() {
	rc, err := recycle.New(recycle.Config{MaxRequests: 2, PositionHeader: "X-Conn-Requests"})
	if err != nil {
		log.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	srv := &http.Server{Handler: rc.Wrap(hello)}
	rc.Install(srv) // sets ConnContext and ConnState

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for range 5 {
		resp, err := client.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("position %s, close %v\n", resp.Header.Get("X-Conn-Requests"), resp.Close)
	}
	fmt.Println("connections:", rc.Stats().TotalConns)
	// Output:
	// position 1, close false
	// position 2, close true
	// position 1, close false
	// position 2, close true
	// position 1, close false
	// connections: 3
}
