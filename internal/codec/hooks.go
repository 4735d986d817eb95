package codec

import (
	"errors"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
)

// encoderMap maps a Go type to its conversion hook.
type encoderMap = map[reflect.Type]func(any) (any, error)

// processEncoders are the hooks RegisterEncoder installs, consulted by
// every Codec after its own (WithEncoder). The map is never changed once
// published: RegisterEncoder publishes a copy.
var (
	processEncoders   atomic.Pointer[encoderMap]
	processEncodersMu sync.Mutex
)

// RegisterEncoder registers a conversion hook for values of Go type typ
// in every Codec of the process, existing ones included; a Codec's own
// WithEncoder hook for the same type wins. The hook works as for
// WithEncoder. Registering a type twice keeps the last hook. Safe for
// concurrent use, but meant for program start (init or main), before
// values of typ are encoded.
func RegisterEncoder(typ reflect.Type, fn func(v any) (any, error)) error {
	if typ == nil || fn == nil {
		return errors.New("codec: RegisterEncoder: nil type or func")
	}
	processEncodersMu.Lock()
	defer processEncodersMu.Unlock()
	m := encoderMap{}
	if old := processEncoders.Load(); old != nil {
		m = maps.Clone(*old)
	}
	m[typ] = fn
	processEncoders.Store(&m)
	return nil
}

// hasHooks reports whether any hook may apply: cheap, for the encode fast
// path.
func (c *Codec) hasHooks() bool { return len(c.encoders) > 0 || processEncoders.Load() != nil }

// hookFor returns the hook for type t, or nil.
func (c *Codec) hookFor(t reflect.Type) func(any) (any, error) {
	if fn, ok := c.encoders[t]; ok {
		return fn
	}
	if m := processEncoders.Load(); m != nil {
		return (*m)[t]
	}
	return nil
}
