package chunk_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/gaterpc/gate/internal/chunk"
)

func Example() {
	// msgpack str16 of 5000 'x', as in the HUGE_TEXT vector.
	value := append([]byte{0xda, 0x13, 0x88}, bytes.Repeat([]byte("x"), 5000)...)
	frozen := func() time.Time { return time.Unix(1700000000, 0) }

	var chunks [][]byte
	s, err := chunk.NewSender(func(c []byte) error {
		chunks = append(chunks, c)
		return nil
	}, chunk.WithCompressor(chunk.Gzip{Now: frozen}))
	if err != nil {
		panic(err)
	}
	s.Write(value)
	if err := s.Close(); err != nil {
		panic(err)
	}
	fmt.Printf("header %x, %d chunks, last %d bytes\n", chunks[0][:10], len(chunks), len(chunks[len(chunks)-1]))

	a, err := chunk.NewAssembler(chunk.WithMaxSize(1 << 20))
	if err != nil {
		panic(err)
	}
	defer a.Close()
	for _, c := range chunks {
		if err := a.Write(c); err != nil {
			panic(err)
		}
	}
	out, err := a.Finish()
	fmt.Println(a.Format(), len(out), bytes.Equal(out, value), err)
	// Output:
	// header 1f8b080000f1536504ff, 2 chunks, last 0 bytes
	// gzip 5003 true <nil>
}
