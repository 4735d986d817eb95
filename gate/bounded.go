package gate

import "github.com/gaterpc/gate/internal/bounded"

// BoundedMap is a map with a capacity, safe for concurrent use: the Go form
// of gaterpc's BoundedDict, and the client's pending-call table. Set and Add
// wait for room and Get and Take wait for a key, each until its ctx is done,
// without starting goroutines. A capacity of zero or less means unbounded.
type BoundedMap[K comparable, V any] = bounded.Map[K, V]

// NewBoundedMap returns an empty BoundedMap holding at most capacity
// entries.
func NewBoundedMap[K comparable, V any](capacity int) *BoundedMap[K, V] {
	return bounded.New[K, V](capacity)
}
