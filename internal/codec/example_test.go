package codec_test

import (
	"fmt"

	"github.com/gaterpc/gate/internal/codec"
)

func ExampleEncodeResult() {
	b, _ := codec.EncodeResult(42)
	fmt.Printf("%x\n", b)
	result, exc, _ := codec.DecodeReply(b)
	var n int
	_ = codec.Unmarshal(result, &n)
	fmt.Println(n, exc)
	// Output:
	// 82a6726573756c742aa9657863657074696f6ec0
	// 42 <nil>
}

func ExampleDecodeRequestBody() {
	body, _ := codec.EncodeRequestBody("echo", []any{"a", 1}, map[string]any{"k": true})
	fmt.Printf("%x %x %x\n", body[0], body[1], body[2])
	fn, args, kwargs, _ := codec.DecodeRequestBody(body)
	var s string
	_ = codec.Unmarshal(args[0], &s)
	fmt.Println(fn, s, len(args), len(kwargs))
	// Output:
	// a46563686f 92a16101 81a16bc3
	// echo a 2 1
}

func ExampleMap() {
	b, _ := codec.Marshal(codec.Map{{Key: "result", Value: nil}, {Key: "exception", Value: "boom"}})
	fmt.Printf("%x\n", b)
	// Output:
	// 82a6726573756c74c0a9657863657074696f6ea4626f6f6d
}
