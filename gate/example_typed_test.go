package gate_test

import (
	"fmt"

	"github.com/gaterpc/gate/gate"
)

// A service handle names the service once; CallAs and StreamAs take it
// as they take the client.
func ExampleServiceClient() {
	ctx, c, done := exampleClient("example-typed") // the Demo stack of ExampleNewClient
	defer done()

	demo := c.Service("Demo")
	sum, err := gate.CallAs[int](ctx, demo, "add", 40, 2)
	fmt.Println(sum, err)

	s, err := gate.StreamAs[int](ctx, demo, "count", 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	total := 0
	for v, err := range s.All() {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		total += v
	}
	fmt.Println("total", total)

	// The same helper serves both: the client with a full method name,
	// the handle with the service's own.
	double := func(on gate.Caller, method string, n int) (int, error) {
		return gate.CallAs[int](ctx, on, method, n, n)
	}
	fmt.Println(double(c, "Demo.add", 5))
	fmt.Println(double(demo, "add", 6))
	// Output:
	// 42 <nil>
	// total 3
	// 10 <nil>
	// 12 <nil>
}
