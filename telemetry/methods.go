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
}

func newLabelSet(table []string, max int) *labelSet {
	if max <= 0 {
		max = DefaultMaxLabelValues
	}
	s := &labelSet{max: max, seen: make(map[string]struct{}, len(table))}
	if table != nil {
		s.fixed = true
		for _, v := range table {
			s.seen[v] = struct{}{}
		}
	}
	return s
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
	m := s.lookup(info.FullMethod())
	return m, m != OtherMethod
}
