package bounded

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

var (
	// ErrFull is returned (wrapping the ctx error) by [Map.Set] when ctx is
	// done before there is room.
	ErrFull = errors.New("bounded: map full")
	// ErrNoKey is returned (wrapping the ctx error) by [Map.Get] and
	// [Map.Take] when ctx is done before the key appears.
	ErrNoKey = errors.New("bounded: key not present")
	// ErrExists is returned by [Map.Add] when the key is already present.
	ErrExists = errors.New("bounded: key already present")
)

// Map is a map with a capacity, safe for concurrent use. Set waits for room
// and Get waits for a key, each until its ctx is done; waiting costs no
// goroutine beyond the caller's. A capacity of zero or less means unbounded,
// and the zero value is an empty unbounded Map. A Map must not be copied after
// first use.
type Map[K comparable, V any] struct {
	mu       sync.Mutex
	capacity int
	m        map[K]V
	// room and added are broadcast channels, created by the first waiter and
	// closed (then dropped) when an entry is removed or added.
	room  chan struct{}
	added chan struct{}
}

// New returns an empty Map that holds at most capacity entries; capacity <= 0
// means unbounded.
func New[K comparable, V any](capacity int) *Map[K, V] {
	return &Map[K, V]{capacity: capacity, m: make(map[K]V)}
}

// Cap returns the capacity; zero or less means unbounded.
func (m *Map[K, V]) Cap() int { return m.capacity }

// Len returns the number of entries.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// Set stores v under k, waiting for room while the map is full. Replacing an
// existing key never waits. When the store can happen at once, Set does it
// without consulting ctx. If ctx is done first, Set returns an error that
// matches both [ErrFull] and ctx.Err() under [errors.Is].
func (m *Map[K, V]) Set(ctx context.Context, k K, v V) error {
	return m.store(ctx, k, v, true)
}

// Add stores v under k only if k is absent, waiting for room while the map
// is full. It returns [ErrExists] if k is present, and an error matching
// [ErrFull] and ctx.Err() if ctx is done before there is room.
func (m *Map[K, V]) Add(ctx context.Context, k K, v V) error {
	return m.store(ctx, k, v, false)
}

// store is Set (replace true) and Add (replace false).
func (m *Map[K, V]) store(ctx context.Context, k K, v V, replace bool) error {
	for {
		m.mu.Lock()
		if !replace {
			if _, ok := m.m[k]; ok {
				m.mu.Unlock()
				return ErrExists
			}
		}
		if m.storeLocked(k, v) {
			m.mu.Unlock()
			return nil
		}
		if m.room == nil {
			m.room = make(chan struct{})
		}
		room := m.room
		m.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrFull, ctx.Err())
		}
	}
}

// TrySet stores v under k if there is room or k is present, and reports
// whether it did. It never waits.
func (m *Map[K, V]) TrySet(k K, v V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.storeLocked(k, v)
}

func (m *Map[K, V]) storeLocked(k K, v V) bool {
	if m.m == nil {
		m.m = make(map[K]V)
	}
	if _, ok := m.m[k]; ok {
		m.m[k] = v
		return true
	}
	if m.capacity > 0 && len(m.m) >= m.capacity {
		return false
	}
	m.m[k] = v
	if m.added != nil {
		close(m.added)
		m.added = nil
	}
	return true
}

// Load returns the value stored under k without waiting.
func (m *Map[K, V]) Load(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok
}

// Get returns the value stored under k, waiting for it to be set. If ctx is
// done first, Get returns an error that matches both [ErrNoKey] and
// ctx.Err().
func (m *Map[K, V]) Get(ctx context.Context, k K) (V, error) {
	return m.wait(ctx, k, false)
}

// Take removes and returns the value stored under k, waiting for it to be
// set. Errors are as for [Map.Get].
func (m *Map[K, V]) Take(ctx context.Context, k K) (V, error) {
	return m.wait(ctx, k, true)
}

func (m *Map[K, V]) wait(ctx context.Context, k K, remove bool) (V, error) {
	for {
		m.mu.Lock()
		if v, ok := m.m[k]; ok {
			if remove {
				m.deleteLocked(k)
			}
			m.mu.Unlock()
			return v, nil
		}
		if m.added == nil {
			m.added = make(chan struct{})
		}
		added := m.added
		m.mu.Unlock()
		select {
		case <-added:
		case <-ctx.Done():
			var zero V
			return zero, fmt.Errorf("%w: %w", ErrNoKey, ctx.Err())
		}
	}
}

// Delete removes the entry for k and returns its value, if it was present.
func (m *Map[K, V]) Delete(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	if ok {
		m.deleteLocked(k)
	}
	return v, ok
}

// DeleteIf removes the entry for k if match reports true for its value,
// atomically, and reports whether it removed it.
func (m *Map[K, V]) DeleteIf(k K, match func(V) bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	if !ok || !match(v) {
		return false
	}
	m.deleteLocked(k)
	return true
}

func (m *Map[K, V]) deleteLocked(k K) {
	delete(m.m, k)
	if m.room != nil {
		close(m.room)
		m.room = nil
	}
}

// Range calls f for each entry of a snapshot taken when Range is called, in
// no particular order, until f returns false. f runs without the lock held,
// so it may call any method of m.
func (m *Map[K, V]) Range(f func(k K, v V) bool) {
	type entry struct {
		k K
		v V
	}
	m.mu.Lock()
	snap := make([]entry, 0, len(m.m))
	for k, v := range m.m {
		snap = append(snap, entry{k, v})
	}
	m.mu.Unlock()
	for _, e := range snap {
		if !f(e.k, e.v) {
			return
		}
	}
}
