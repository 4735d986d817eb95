// Package bounded provides [Map], a generic map with a capacity, the Go form
// of gaterpc's BoundedDict. Writers wait for room and readers wait for a key,
// each bounded by a context:
//
//	pending := bounded.New[string, *call](1024)
//	if err := pending.Set(ctx, id, c); err != nil {
//		return err // errors.Is(err, bounded.ErrFull) once ctx is done
//	}
//	reply, err := replies.Take(ctx, id) // waits until someone Sets id
//
// Waiting uses channels, not sync.Cond, so a waiter leaves as soon as its
// ctx is done, and no goroutine is started on its behalf. All methods are safe
// for concurrent use.
package bounded
