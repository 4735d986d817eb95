package telemetry

import (
	"sync"

	"github.com/gaterpc/gate/gate"
)

// DefaultMaxLabelValues bounds a label that learns its values as they are
// seen (methods without a registered table, services at the broker): the
// first DefaultMaxLabelValues distinct values keep their name, later ones
// become OtherMethod.
const DefaultMaxLabelValues = 1000

// labelSet is a bounded set of label values. With a fixed table it is
// closed; without one it admits the first max values it sees. It is safe
// for concurrent use.
type labelSet struct {
	fixed bool
	max   int

	mu   sync.RWMutex
	seen map[string]struct{}
	// parts maps admitted (service, method) pairs to their "Service/method"
	// label, so that method needs no string concatenation once a pair is
	// known. It holds members only, so it is bounded like seen.
	parts map[methodKey]string
}

// methodKey is a (service, method) pair, a map key that needs no
// allocation to build.
type methodKey struct{ service, method string }

func newLabelSet(table []string, max int) *labelSet {
	if max <= 0 {
		max = DefaultMaxLabelValues
	}
	s := &labelSet{max: max, seen: make(map[string]struct{}, len(table)), parts: make(map[methodKey]string, len(table))}
	if table != nil {
		s.fixed = true
		for _, v := range table {
			s.seen[v] = struct{}{}
		}
	}
	return s
}

// peek returns v if it is already a member, else OtherMethod; unlike
// lookup it never admits v.
func (s *labelSet) peek(v string) string {
	s.mu.RLock()
	_, ok := s.seen[v]
	s.mu.RUnlock()
	if ok {
		return v
	}
	return OtherMethod
}

// lookup returns v if it is (or becomes) a member, else OtherMethod.
func (s *labelSet) lookup(v string) string {
	if v == "" {
		return OtherMethod
	}
	s.mu.RLock()
	_, ok := s.seen[v]
	n := len(s.seen)
	s.mu.RUnlock()
	if ok {
		return v
	}
	if s.fixed || n >= s.max {
		return OtherMethod
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[v]; ok {
		return v
	}
	if len(s.seen) >= s.max {
		return OtherMethod
	}
	s.seen[v] = struct{}{}
	return v
}

// method returns the bounded "Service/method" label of info and whether
// it is known (false means OtherMethod).
func (s *labelSet) method(info gate.Info) (string, bool) {
	if info.Service == "" || info.Method == "" {
		return OtherMethod, false
	}
	k := methodKey{info.Service, info.Method}
	s.mu.RLock()
	m, ok := s.parts[k]
	s.mu.RUnlock()
	if ok {
		return m, true
	}
	m = s.lookup(info.FullMethod())
	if m == OtherMethod {
		return m, false
	}
	s.mu.Lock()
	s.parts[k] = m
	s.mu.Unlock()
	return m, true
}

// cache memoizes new(k) for up to max keys (then it computes without
// storing), for metric children and attribute sets keyed by bounded label
// values. It is safe for concurrent use; new may run more than once for a
// key, so it must be idempotent (a Vec's WithLabelValues is).
type cache[K comparable, V any] struct {
	max int
	new func(K) V

	mu sync.RWMutex
	m  map[K]V
}

func newCache[K comparable, V any](max int, fn func(K) V) *cache[K, V] {
	if max <= 0 {
		max = DefaultMaxLabelValues
	}
	return &cache[K, V]{max: max, new: fn, m: make(map[K]V)}
}

func (c *cache[K, V]) get(k K) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = c.new(k)
	c.mu.Lock()
	if len(c.m) < c.max {
		c.m[k] = v
	}
	c.mu.Unlock()
	return v
}
