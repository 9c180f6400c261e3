package field_test

import (
	"errors"
	"fmt"

	"github.com/kaload/kaload/pkg/client"
	"github.com/kaload/kaload/pkg/field"
)

// A program that sets client.Config from its own inputs finds the field
// behind each problem and says it in its users' words.
func Example() {
	cfg := client.Config{Duration: -1}
	err := cfg.Validate()
	var fe *field.Error
	if errors.As(err, &fe) {
		fmt.Println("first bad field:", fe.Fields[0])
	}
	fmt.Println(err)
	// Output:
	// first bad field: URL
	// URL: required
	// Duration: must not be negative, got -1ns
}
