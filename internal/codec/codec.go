package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Default decode caps, the limits gaterpc 0.2.12 applies to every msgpack
// decode (docs/wire-protocol.md section 0).
const (
	DefaultMaxStrLen  = 32 << 20 // bytes per str
	DefaultMaxBinLen  = 32 << 20 // bytes per bin or ext payload
	DefaultMaxEntries = 1 << 20  // elements per array, pairs per map
	DefaultMaxDepth   = 512      // nesting of arrays and maps
)

// Sentinel errors. Every error returned by this package wraps one of them
// (test with errors.Is).
var (
	// ErrMalformed: the input is not exactly one valid msgpack value of
	// the expected shape (truncated, trailing bytes, reserved byte 0xc1,
	// invalid UTF-8 in a str, unhashable map key, wrong body shape...).
	ErrMalformed = errors.New("codec: malformed msgpack")
	// ErrLimit: a length, count or nesting depth exceeds the codec's caps.
	// It is detected from the length header, before anything is allocated.
	ErrLimit = errors.New("codec: size limit exceeded")
	// ErrUnsupportedType: a Go value has no msgpack encoding (channel,
	// func, complex, a cycle deeper than MaxDepth...).
	ErrUnsupportedType = errors.New("codec: unsupported type")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func limit(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
}

// Codec encodes Go values to msgpack exactly as Python's msgpack (>= 1.0,
// default options) encodes the equivalent Python values, and decodes
// msgpack under size caps. Create one with New; the zero value is not
// usable. A Codec is immutable after New and safe for concurrent use.
type Codec struct {
	maxStr, maxBin, maxEntries, maxDepth int
	encoders                             map[reflect.Type]func(any) (any, error)
	extDecoders                          map[int8]func([]byte) (any, error)
	mapHook                              func(map[string]any) (any, error)
	ordered                              bool
	ifaceMap                             func(*msgpack.Decoder) (any, error) // Unmarshal's maps in interface positions
}

// ErrInvalidOption is wrapped by every error of an invalid option. New
// reports all of them, joined; gate wraps them in gate.ErrInvalidOption.
var ErrInvalidOption = errors.New("codec: invalid option")

// Option configures a Codec.
type Option interface{ apply(*Codec) error }

type optionFunc func(*Codec) error

func (f optionFunc) apply(c *Codec) error { return f(c) }

// MaxStrLen caps the length of a decoded str (default 32 MiB). Encoding
// a longer string also fails, since a Python peer would reject it. n must be
// positive.
func MaxStrLen(n int) Option {
	return optionFunc(func(c *Codec) error { return setPositive(&c.maxStr, n, "MaxStrLen") })
}

// MaxBinLen caps the length of a decoded bin or ext payload (default
// 32 MiB); encoding longer ones fails too. n must be positive.
func MaxBinLen(n int) Option {
	return optionFunc(func(c *Codec) error { return setPositive(&c.maxBin, n, "MaxBinLen") })
}

// MaxEntries caps the element count of an array and the pair count of a
// map (default 1,048,576), on decode and encode. n must be positive.
func MaxEntries(n int) Option {
	return optionFunc(func(c *Codec) error { return setPositive(&c.maxEntries, n, "MaxEntries") })
}

// MaxDepth caps the nesting of arrays and maps (default 512), on decode and
// encode, which also bounds recursion and catches reference cycles. n must
// be positive.
func MaxDepth(n int) Option {
	return optionFunc(func(c *Codec) error { return setPositive(&c.maxDepth, n, "MaxDepth") })
}

func setPositive(dst *int, n int, name string) error {
	if n <= 0 {
		return fmt.Errorf("%w: %s(%d): must be positive", ErrInvalidOption, name, n)
	}
	*dst = n
	return nil
}

// WithEncoder registers a conversion hook for values of Go type typ, like
// the default= / prepare_pack hook of Python's msgpack: before encoding a
// value of exactly that type, the codec calls fn and encodes its result
// instead (fn must not return a value of the same type). A hook for
// time.Time replaces the default timestamp encoding. Registering a type
// twice keeps the last hook.
func WithEncoder(typ reflect.Type, fn func(v any) (any, error)) Option {
	return optionFunc(func(c *Codec) error {
		if typ == nil || fn == nil {
			return fmt.Errorf("%w: WithEncoder: nil type or func", ErrInvalidOption)
		}
		c.encoders[typ] = fn
		return nil
	})
}

// EncodeAs is the typed form of WithEncoder:
//
//	codec.New(codec.EncodeAs(func(d time.Duration) (any, error) { return d.Seconds(), nil }))
func EncodeAs[T any](fn func(T) (any, error)) Option {
	return WithEncoder(reflect.TypeFor[T](), func(v any) (any, error) { return fn(v.(T)) })
}

// WithExtDecoder registers how Decode turns an ext value of type extType
// into a Go value (Python's ext_hook). Without a hook an ext decodes as Ext,
// except type -1 (timestamp), which decodes as time.Time. The data slice
// passed to fn is a copy and may be retained.
func WithExtDecoder(extType int8, fn func(data []byte) (any, error)) Option {
	return optionFunc(func(c *Codec) error {
		if fn == nil {
			return fmt.Errorf("%w: WithExtDecoder: nil func", ErrInvalidOption)
		}
		c.extDecoders[extType] = fn
		return nil
	})
}

// WithMapHook sets a hook that Decode calls on every decoded map (after
// its keys are converted to strings, see Decode), innermost first, and
// whose result replaces the map (Python's object_hook).
func WithMapHook(fn func(map[string]any) (any, error)) Option {
	return optionFunc(func(c *Codec) error {
		c.mapHook = fn
		return nil
	})
}

// OrderedMaps makes Decode return every map as a Map, which keeps the
// order of the pairs as sent (a Python dict's insertion order) and every
// key as decoded (bin keys as Bin), so that Marshal(Decode(b)) reproduces
// b for any canonically encoded b. It is the lossless way to read maps
// with keys that are not str. The map hook is not called for ordered
// maps.
func OrderedMaps() Option {
	return optionFunc(func(c *Codec) error {
		c.ordered = true
		return nil
	})
}

// New returns a Codec with the 0.2.12 defaults, modified by opts. Every
// option is applied; the errors of the invalid ones are joined, each
// wrapping ErrInvalidOption.
func New(opts ...Option) (*Codec, error) {
	c := &Codec{
		maxStr:      DefaultMaxStrLen,
		maxBin:      DefaultMaxBinLen,
		maxEntries:  DefaultMaxEntries,
		maxDepth:    DefaultMaxDepth,
		encoders:    map[reflect.Type]func(any) (any, error){},
		extDecoders: map[int8]func([]byte) (any, error){},
	}
	var errs []error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.ifaceMap = c.unmarshalMap
	return c, nil
}

// unmarshalMap decodes a map in an interface position for Unmarshal as
// Decode decodes a map: keys converted to strings, colliding keys an
// error, the map hook applied (with OrderedMaps, as a Map). The values
// are msgpack/v5's loose interface values.
func (c *Codec) unmarshalMap(d *msgpack.Decoder) (any, error) {
	if c.ordered {
		raw, err := d.DecodeRaw()
		if err != nil {
			return nil, err
		}
		return c.Decode(raw)
	}
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	m := newStrMap(n)
	for range n {
		code, err := d.PeekCode()
		if err != nil {
			return nil, err
		}
		isStr := msgpcode.IsString(code)
		var ks string
		var k any
		if isStr {
			ks, err = d.DecodeString() // unboxed: most keys are str
		} else {
			k, err = d.DecodeInterfaceLoose()
		}
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeInterfaceLoose()
		if err != nil {
			return nil, err
		}
		if isStr {
			err = m.putStr(ks, v)
		} else {
			err = m.put(k, v)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.mapHook != nil {
		return c.mapHook(m.m)
	}
	return m.m, nil
}

// std is the codec behind the package-level functions.
var std, _ = New()

// Ext is a msgpack extension value that has no registered decoder.
type Ext struct {
	Type int8
	Data []byte
}

// Bin is the Go type of a bin map key in a Map returned by Decode with
// OrderedMaps ([]byte cannot be compared). It encodes as bin again, and a
// Go map key of type Bin encodes as a bin key.
type Bin string

// RawMessage is one encoded msgpack value. Marshal writes it verbatim
// (after checking it is exactly one valid value), and Unmarshal into a
// *RawMessage stores the value's bytes. It is msgpack/v5's type, so it also
// works in struct fields decoded by Unmarshal.
type RawMessage = msgpack.RawMessage

// MapItem is one key/value pair of a Map.
type MapItem struct {
	Key   any
	Value any
}

// Map is a msgpack map that keeps its key order, like a Python dict
// (insertion order). Plain Go maps are encoded with sorted keys instead.
// Duplicate keys are encoded as given.
type Map []MapItem

// Marshal encodes v as Python's msgpack would encode the equivalent Python
// value: see the package documentation for the mapping.
func (c *Codec) Marshal(v any) ([]byte, error) {
	e := encoder{c: c}
	if err := e.encode(v, 0); err != nil {
		return nil, err
	}
	return e.b, nil
}

// Append is Marshal appending to dst.
func (c *Codec) Append(dst []byte, v any) ([]byte, error) {
	e := encoder{c: c, b: dst}
	if err := e.encode(v, 0); err != nil {
		return dst, err
	}
	return e.b, nil
}

// Decode decodes exactly one msgpack value into a Go value: nil, bool,
// int64 (every integer that fits; larger unsigned ones are uint64), float64
// (float32 is widened), string, []byte (a copy), []any, map[string]any for
// every map (or Map with OrderedMaps), time.Time for ext -1, and Ext or a
// hook's value for other ext types. Trailing bytes are an error. Lengths
// are checked against the caps and the remaining input before anything is
// allocated.
//
// A map key that is not a str is converted to the string Python's str()
// gives it, the conversion json.dumps applies to dict keys: an integer in
// decimal ("1", "-2"), a float as Python's repr ("1.5", "1.0", "1e+16",
// "1e-05", "nan", "inf"), a bool as "True" or "False", nil as "None", a
// bin as its bytes (an error unless they are valid UTF-8), a timestamp as
// "Timestamp(seconds=S, nanoseconds=N)" and an ext hook's value by its
// String method (or its kind, for a bool, number or string). Two
// different keys of one map with the same string form (1 and "1", or str
// "a" and bin "a") are an error wrapping ErrMalformed; a repeated
// identical key keeps the last value, as in a Python dict. Array, map and
// non-timestamp ext keys are rejected as unhashable. Decode with
// OrderedMaps, or Unmarshal into a typed map such as map[int]string, to
// keep the keys' types.
func (c *Codec) Decode(b []byte) (any, error) {
	d := decoder{c: c, b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(b) {
		return nil, malformed("%d trailing bytes after the value", len(b)-d.i)
	}
	return v, nil
}

// DecodeOwned is Decode for a buffer the caller hands over and never
// touches again, such as a reassembled HugeData payload: bin values are
// slices of b (capped, so appending to one cannot overwrite the next)
// rather than copies, and str and bin lengths are bounded by b itself
// rather than by MaxStrLen and MaxBinLen (b's own size is the cap that
// matters: HugeDataMaxSize). MaxEntries and MaxDepth still apply.
func (c *Codec) DecodeOwned(b []byte) (any, error) {
	d := decoder{c: c, b: b, owned: true}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(b) {
		return nil, malformed("%d trailing bytes after the value", len(b)-d.i)
	}
	return v, nil
}

// UnmarshalOwned is Unmarshal for a buffer the caller hands over (see
// DecodeOwned): a *[]byte or *any target gets slices of b rather than
// copies, and str and bin lengths are bounded by b alone.
func (c *Codec) UnmarshalOwned(b []byte, v any) error {
	d := decoder{c: c, b: b, owned: true}
	if err := d.skip(0); err != nil {
		return err
	}
	if d.i != len(b) {
		return malformed("%d trailing bytes after the value", len(b)-d.i)
	}
	switch p := v.(type) {
	case *any:
		if p != nil {
			x, err := c.DecodeOwned(b)
			if err != nil {
				return err
			}
			*p = x
			return nil
		}
	case *[]byte:
		if p != nil && len(b) > 0 && (b[0] == 0xc4 || b[0] == 0xc5 || b[0] == 0xc6) {
			x, err := c.DecodeOwned(b)
			if err != nil {
				return err
			}
			*p = x.([]byte)
			return nil
		}
	}
	return c.unmarshalValidated(b, v)
}

// Validate checks that b is exactly one valid msgpack value within the
// caps, without allocating. It accepts maps with array, map or ext keys
// (valid msgpack), which Decode rejects unless OrderedMaps is set, because
// a Go map cannot hold them.
func (c *Codec) Validate(b []byte) error {
	d := decoder{c: c, b: b}
	if err := d.skip(0); err != nil {
		return err
	}
	if d.i != len(b) {
		return malformed("%d trailing bytes after the value", len(b)-d.i)
	}
	return nil
}

// Unmarshal decodes exactly one msgpack value into v, which must be a
// non-nil pointer. The input is first validated against the caps (so a
// hostile length header cannot force a large allocation); then a pointer to
// an interface or to a map[string]any gets Decode's result, and anything
// else (structs with `msgpack:"name"` tags, typed slices and maps,
// *RawMessage...) is decoded by github.com/vmihailenco/msgpack/v5 with
// loose interface decoding (int64, uint64, float64 inside any). A map in
// an interface position there (a field of type any, an element of []any)
// gets string keys as Decode's maps do (and the map hook), so every
// untyped map is a map[string]any, while a typed map keeps its key type
// (map[int]string) and a typed map[string]T field needs str keys. Ext
// hooks apply only to Decode.
func (c *Codec) Unmarshal(b []byte, v any) error {
	if err := c.Validate(b); err != nil {
		return err
	}
	return c.unmarshalValidated(b, v)
}

// unmarshalValidated is Unmarshal after the validation.
func (c *Codec) unmarshalValidated(b []byte, v any) error {
	if p, ok := v.(*any); ok && p != nil {
		x, err := c.Decode(b)
		if err != nil {
			return err
		}
		*p = x
		return nil
	}
	if p, ok := v.(*map[string]any); ok && p != nil {
		x, err := c.Decode(b)
		if err != nil {
			return err
		}
		switch m := x.(type) {
		case map[string]any:
			*p = m
			return nil
		case nil:
			*p = nil
			return nil
		}
		// not a map (or a hook's value): msgpack/v5 says why below
	}
	if p, ok := v.(*RawMessage); ok && p != nil {
		*p = append((*p)[:0], b...)
		return nil
	}
	if c.unmarshalScalar(b, v) {
		return nil
	}
	ud := unmarshalers.Get().(*unmarshaler)
	defer unmarshalers.Put(ud)
	ud.r.Reset(b)
	ud.d.Reset(&ud.r)
	ud.d.UseLooseInterfaceDecoding(true)
	ud.d.SetMapDecoder(c.ifaceMap)
	err := ud.d.Decode(v)
	ud.r.Reset(nil) // keep no reference to b in the pool
	if err != nil {
		return fmt.Errorf("codec: unmarshal into %T: %w", v, err)
	}
	return nil
}

// unmarshalScalar decodes a validated b into a *string, *[]byte, *int,
// *int64, *float64 or *bool when b holds that msgpack type (str, bin,
// int, float, bool), with the same result as msgpack/v5. It reports false
// for any other target or type, which msgpack/v5 then decodes (nil, an int
// into a float64, a str into a []byte...).
func (c *Codec) unmarshalScalar(b []byte, v any) bool {
	d := decoder{c: c, b: b}
	switch p := v.(type) {
	case *string:
		if h, err := d.head(); p != nil && err == nil && h.k == kStr {
			*p = string(d.take(h.n))
			return true
		}
	case *[]byte:
		if h, err := d.head(); p != nil && *p == nil && err == nil && h.k == kBin {
			*p = append([]byte{}, d.take(h.n)...)
			return true
		}
	case *int64:
		if h, err := d.head(); p != nil && err == nil && h.k == kInt {
			*p = h.i
			return true
		}
	case *int:
		if h, err := d.head(); p != nil && err == nil && h.k == kInt && int64(int(h.i)) == h.i {
			*p = int(h.i)
			return true
		}
	case *float64:
		if h, err := d.head(); p != nil && err == nil && h.k == kFloat {
			*p = h.f
			return true
		}
	case *bool:
		if h, err := d.head(); p != nil && err == nil && h.k == kBool {
			*p = h.b
			return true
		}
	}
	return false
}

// unmarshaler is a msgpack decoder with its reader, reused across
// Unmarshal calls (a stream decodes one per item).
type unmarshaler struct {
	r bytes.Reader
	d *msgpack.Decoder
}

var unmarshalers = sync.Pool{New: func() any {
	u := &unmarshaler{}
	u.d = msgpack.NewDecoder(&u.r)
	return u
}}

// Marshal encodes v with the default codec (0.2.12 caps, no hooks).
func Marshal(v any) ([]byte, error) { return std.Marshal(v) }

// Unmarshal decodes b into v with the default codec.
func Unmarshal(b []byte, v any) error { return std.Unmarshal(b, v) }

// Decode decodes b into a Go value with the default codec.
func Decode(b []byte) (any, error) { return std.Decode(b) }

// Validate checks b with the default codec.
func Validate(b []byte) error { return std.Validate(b) }

// msgpack/v5 refuses to decode a float64 into a float32, but Python only
// ever sends float64. Registering this decoder for float32 (the exact type;
// named float32 types are not covered) makes Unmarshal accept any msgpack
// number there. It only widens what msgpack/v5 accepts, process-wide.
func init() {
	msgpack.Register(float32(0), nil, func(d *msgpack.Decoder, v reflect.Value) error {
		f, err := d.DecodeFloat64()
		if err != nil {
			return err
		}
		v.SetFloat(f)
		return nil
	})
}
