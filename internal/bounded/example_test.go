package bounded_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gaterpc/gate/internal/bounded"
)

func ExampleMap() {
	m := bounded.New[string, int](1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()

	fmt.Println(m.Set(ctx, "a", 1))
	err := m.Set(ctx, "b", 2) // full: waits until ctx is done
	fmt.Println(errors.Is(err, bounded.ErrFull), errors.Is(err, context.DeadlineExceeded))

	v, ok := m.Delete("a")
	fmt.Println(v, ok, m.TrySet("b", 2), m.Len())
	// Output:
	// <nil>
	// true true
	// 1 true true 1
}
