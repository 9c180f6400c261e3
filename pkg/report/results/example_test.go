package results_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/report/results"
)

func Example() {
	var file bytes.Buffer // a results file; CreateFile writes a real one
	w, err := results.NewWriter(&file, results.FormatBinary, results.Header{
		Kaload: "dev", URL: "http://web:8080/?a=1&b=2", Start: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), Connections: 2,
	})
	if err != nil {
		panic(err)
	}
	for i := range 4 {
		w.Write(&client.Result{Seq: uint64(i), Latency: time.Millisecond, Status: 200,
			Backend: []string{"pod-a", "pod-b"}[i%2], Conn: uint64(i%2 + 1), ConnReq: uint32(i/2 + 1), ServerTotal: -1})
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := results.NewReader(&file)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Header().URL)
	var res client.Result
	for {
		err := r.Read(&res)
		if err == io.EOF {
			break
		}
		if errors.Is(err, results.ErrTruncated) {
			fmt.Println("warning:", err) // the records before the cut were read
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Seq, res.Backend, res.Conn, res.ConnReq)
	}
	t, ok := r.Trailer()
	fmt.Println(t.Records, ok)
	// Output:
	// http://web:8080/?a=1&b=2
	// 0 pod-a 1 1
	// 1 pod-b 2 1
	// 2 pod-a 1 2
	// 3 pod-b 2 2
	// 4 true
}
