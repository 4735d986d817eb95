package gate_test

import (
	"context"
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
)

// Every decoded map is a map[string]any: keys that are not strings
// arrive as the string Python's str() gives them, as json.dumps would
// write them. CallAs with a typed map keeps the keys' type (with
// map[string]any it gives what Call gives), and a reply whose keys would
// collide as strings is an error rather than a lost entry.
func ExampleClient_Call_mapKeys() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	svc, _ := gate.NewService("Keys", "")
	_ = gate.Func0(svc, "squares", func(context.Context) (map[int]int, error) {
		return map[int]int{1: 1, 2: 4, -3: 9}, nil
	})
	_ = gate.Func0(svc, "flags", func(context.Context) (map[any]any, error) {
		return map[any]any{true: "on", 1.5: "half", nil: "none"}, nil
	})
	_ = gate.Func0(svc, "clash", func(context.Context) (map[any]any, error) {
		return map[any]any{1: "int", "1": "str"}, nil
	})
	c, stop := exampleServe(ctx, zctx, svc)
	defer stop()

	v, err := c.Call(ctx, "Keys.squares")
	fmt.Printf("%#v %v\n", v, err)
	typed, err := gate.CallAs[map[int]int](ctx, c, "Keys.squares")
	fmt.Printf("%#v %v\n", typed, err)
	untyped, err := gate.CallAs[map[string]any](ctx, c, "Keys.squares")
	fmt.Printf("%#v %v\n", untyped, err)
	v, err = c.Call(ctx, "Keys.flags")
	fmt.Printf("%#v %v\n", v, err)
	_, err = c.Call(ctx, "Keys.clash")
	fmt.Println(err)
	// Output:
	// map[string]interface {}{"-3":9, "1":1, "2":4} <nil>
	// map[int]int{-3:9, 1:1, 2:4} <nil>
	// map[string]interface {}{"-3":9, "1":1, "2":4} <nil>
	// map[string]interface {}{"1.5":"half", "None":"none", "True":"on"} <nil>
	// codec: malformed msgpack: map keys int64 1 and str "1" both become the string key "1"
}
