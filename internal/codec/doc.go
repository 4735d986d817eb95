// Package codec is gate's msgpack value codec. It writes the same bytes as
// Python's msgpack (>= 1.0, default options), which gaterpc 0.2.12 uses for
// every request and reply body, and it decodes untrusted input under the
// same size caps as 0.2.12 (32 MiB per str or bin, 1,048,576 entries per
// array or map), checked before anything is allocated.
//
// Encoding (Marshal) maps Go values to the msgpack a Python peer would
// produce for the equivalent Python value:
//
//   - nil, nil pointers, nil slices and nil maps: nil
//   - bool: bool
//   - every integer type: the smallest encoding for the value (positive
//     fixint, uint8..uint64, negative fixint, int8..int64), chosen by value,
//     not by Go type
//   - float32 and float64: float64, always
//   - string: str (must be valid UTF-8); []byte and [N]byte: bin
//   - slices and arrays: array
//   - maps: map, keys in ascending order (strings by string order, other
//     keys by their encoding) so output is deterministic; Map keeps the
//     given order, like a Python dict
//   - structs: a map of the exported fields in declaration order, named by
//     the `msgpack:"name,omitempty"` tag as in msgpack/v5 ("-" skips)
//   - time.Time: the msgpack timestamp extension (type -1), which Python
//     decodes as msgpack.Timestamp
//   - RawMessage: written verbatim; Ext: an extension value
//   - types implementing msgpack/v5's Marshaler or CustomEncoder: delegated
//   - any type with a hook registered by WithEncoder / EncodeAs (one
//     Codec) or RegisterEncoder (every Codec of the process): the hook's
//     result (Python's default= / prepare_pack idea)
//
// Decoding (Decode) returns nil, bool, int64 (uint64 above MaxInt64),
// float64, string, []byte, []any, map[string]any (or Map with
// OrderedMaps), time.Time and Ext. Every map is a map[string]any: a key
// that is not a str becomes the string Python's str() gives it (1 → "1",
// 1.0 → "1.0", True → "True", None → "None"), as json.dumps does, and two
// keys of one map that become the same string are an ErrMalformed error.
// OrderedMaps keeps every key as sent, and Unmarshal decodes into typed Go
// values (map[int]string, structs with msgpack tags) through msgpack/v5
// after validating the input. Exactly one value is accepted: trailing
// bytes are an error.
//
// The protocol helpers build and check the bodies of docs/wire-protocol.md
// sections 3 and 5–7:
//
//	body, _ := codec.EncodeRequestBody("echo", []any{"a", 1}, map[string]any{"k": true})
//	fn, args, kwargs, err := codec.DecodeRequestBody(body) // worker side
//	var s string
//	err = codec.Unmarshal(args[0], &s)
//	reply, _ := codec.EncodeResult(map[string]any{"args": args, "kwargs": kwargs})
//	result, exc, err := codec.DecodeReply(reply) // client side
//
// Errors wrap ErrMalformed, ErrLimit or ErrUnsupportedType. A Codec is
// immutable once built, and every function and method of this package is
// safe for concurrent use.
package codec
