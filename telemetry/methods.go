package telemetry

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/gaterpc/gate/gate"
)

// DefaultMaxLabelValues bounds a label that learns its values as they are
// seen (methods without a registered table, services at the broker): the
// first DefaultMaxLabelValues distinct values keep their name, later ones
// become OtherMethod.
const DefaultMaxLabelValues = 1000

// labelSet is a bounded set of label values. With a fixed table it is
// closed; without one it admits the first max values it sees. It is safe
// for concurrent use; reading a member takes no lock (see cowMap).
type labelSet struct {
	fixed bool
	max   int

	seen cowMap[string, struct{}]
	// parts maps admitted (service, method) pairs to their "Service/method"
	// label, so that method needs no string concatenation once a pair is
	// known. It holds members only, so it is bounded like seen.
	parts cowMap[methodKey, string]
}

// methodKey is a (service, method) pair, a map key that needs no
// allocation to build.
type methodKey struct{ service, method string }

func newLabelSet(table []string, max int) *labelSet {
	if max <= 0 {
		max = DefaultMaxLabelValues
	}
	s := &labelSet{max: max}
	if table != nil {
		s.fixed = true
		m := make(map[string]struct{}, len(table))
		for _, v := range table {
			m[v] = struct{}{}
		}
		s.seen.p.Store(&m)
	}
	return s
}

// peek returns v if it is already a member, else OtherMethod; unlike
// lookup it never admits v.
func (s *labelSet) peek(v string) string {
	if _, ok := s.seen.load(v); ok {
		return v
	}
	return OtherMethod
}

// lookup returns v if it is (or becomes) a member, else OtherMethod.
func (s *labelSet) lookup(v string) string {
	if v == "" {
		return OtherMethod
	}
	if _, ok := s.seen.load(v); ok {
		return v
	}
	if s.fixed {
		return OtherMethod
	}
	if _, ok := s.seen.store(v, struct{}{}, s.max); ok {
		return v
	}
	return OtherMethod
}

// method returns the bounded "Service/method" label of info and whether
// it is known (false means OtherMethod).
func (s *labelSet) method(info gate.Info) (string, bool) {
	if info.Service == "" || info.Method == "" {
		return OtherMethod, false
	}
	k := methodKey{info.Service, info.Method}
	if m, ok := s.parts.load(k); ok {
		return m, true
	}
	m := s.lookup(info.FullMethod())
	if m == OtherMethod {
		return m, false
	}
	s.parts.store(k, m, s.max)
	return m, true
}

// cowMap is a map read on every call and written rarely (its keys are
// bounded label values): readers load an immutable map through an atomic
// pointer, without a lock or any shared write, so calls on several cores
// do not contend on it; a writer copies the map under mu.
type cowMap[K comparable, V any] struct {
	p  atomic.Pointer[map[K]V]
	mu sync.Mutex
}

// load returns the value of k and whether it is present.
func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.p.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// store adds k with v unless k is present or the map holds max keys. It
// returns the value k has afterwards (v, or the one already there) and
// whether k is present.
func (c *cowMap[K, V]) store(k K, v V, max int) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	old := c.p.Load()
	if old != nil {
		if e, ok := (*old)[k]; ok {
			return e, true
		}
		n = len(*old)
	}
	if n >= max {
		return v, false
	}
	m := make(map[K]V, n+1)
	if old != nil {
		maps.Copy(m, *old)
	}
	m[k] = v
	c.p.Store(&m)
	return v, true
}

// cache memoizes new(k) for up to max keys (then it computes without
// storing), for metric children and attribute sets keyed by bounded label
// values. It is safe for concurrent use, and a hit takes no lock; new may
// run more than once for a key, so it must be idempotent (a Vec's
// WithLabelValues is).
type cache[K comparable, V any] struct {
	max int
	new func(K) V
	m   cowMap[K, V]
}

func newCache[K comparable, V any](max int, fn func(K) V) *cache[K, V] {
	if max <= 0 {
		max = DefaultMaxLabelValues
	}
	return &cache[K, V]{max: max, new: fn}
}

func (c *cache[K, V]) get(k K) V {
	if v, ok := c.m.load(k); ok {
		return v
	}
	v, _ := c.m.store(k, c.new(k), c.max)
	return v
}
