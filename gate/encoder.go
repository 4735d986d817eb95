package gate

import (
	"reflect"

	"github.com/gaterpc/gate/internal/codec"
)

// RegisterEncoder makes every client and worker of the process encode
// values of type T as fn's result, like the default= hook of Python's
// msgpack: arguments, results, stream items and HugeData values alike.
// fn must return a value gate can encode (nil, bool, numbers, string,
// []byte, slices, maps, structs, time.Time, ...), not another T. A second
// registration for T replaces the first.
//
// Register hooks at program start, in init or at the top of main; a
// binary that uses a [ProcessPool] must register them before
// [RunChildIfRequested] (or in init) so that its children encode alike.
// Types you define can instead implement msgpack/v5's CustomEncoder
// (EncodeMsgpack) and CustomDecoder, which [CallAs] also uses to decode.
// Safe for concurrent use.
func RegisterEncoder[T any](fn func(T) (any, error)) {
	if fn == nil {
		return
	}
	// Only a nil type or func fails, and neither can happen here.
	_ = codec.RegisterEncoder(reflect.TypeFor[T](), func(v any) (any, error) { return fn(v.(T)) })
}
