// Command gin is the gin server bench/serve.sh measures kaload serve
// against, as in the original write-up: a minimal gin app (gin.New, release
// mode, no logger) answering GET / with the backend header, a request count
// and a body like bench/cmd/barehttp's. It is its own module so that the
// main module does not depend on gin.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/gin-gonic/gin"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	hostname := flag.String("hostname", "bench", "backend name to answer with")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	var total atomic.Int64
	r.GET("/", func(c *gin.Context) {
		n := total.Add(1)
		c.Header("Accept-Request-Hostname", *hostname)
		c.Header("Total-Request", strconv.FormatInt(n, 10))
		c.String(http.StatusOK, "backend=%s request=%d\n", *hostname, n)
	})
	log.Fatal(http.ListenAndServe(*listen, r))
}
