package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// kind is the class of a msgpack header.
type kind uint8

const (
	kNil kind = iota
	kBool
	kInt   // signed, value in head.i
	kUint  // unsigned, value in head.u
	kFloat // value in head.f
	kStr   // length in head.n
	kBin
	kArray
	kMap
	kExt // type in head.ext, length in head.n
)

type head struct {
	k   kind
	b   bool
	i   int64
	u   uint64
	f   float64
	n   int
	ext int8
}

// decoder walks one buffer. Every length is checked against the caps and
// against the bytes left before it is used, so nothing larger than the
// input is ever allocated.
type decoder struct {
	c *Codec
	b []byte
	i int
	// owned: the caller hands b over (DecodeOwned). bin and ext values
	// alias b instead of being copied, and str and bin lengths are
	// bounded by b alone, not by MaxStrLen and MaxBinLen.
	owned bool
}

func (d *decoder) need(n int) error {
	if n > len(d.b)-d.i {
		return malformed("truncated input at offset %d: need %d bytes, have %d", d.i, n, len(d.b)-d.i)
	}
	return nil
}

func (d *decoder) u8() (uint8, error) {
	if err := d.need(1); err != nil {
		return 0, err
	}
	v := d.b[d.i]
	d.i++
	return v, nil
}

func (d *decoder) u16() (uint16, error) {
	if err := d.need(2); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(d.b[d.i:])
	d.i += 2
	return v, nil
}

func (d *decoder) u32() (uint32, error) {
	if err := d.need(4); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(d.b[d.i:])
	d.i += 4
	return v, nil
}

func (d *decoder) u64() (uint64, error) {
	if err := d.need(8); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint64(d.b[d.i:])
	d.i += 8
	return v, nil
}

// length reads a 1-, 2- or 4-byte length.
func (d *decoder) length(size int) (int, error) {
	switch size {
	case 1:
		v, err := d.u8()
		return int(v), err
	case 2:
		v, err := d.u16()
		return int(v), err
	default:
		v, err := d.u32()
		return int(v), err
	}
}

// head reads one header and checks its length against the caps and the
// remaining input (a container of n entries needs at least n (array) or 2n
// (map) more bytes).
func (d *decoder) head() (h head, err error) {
	start := d.i
	c, err := d.u8()
	if err != nil {
		return h, err
	}
	switch {
	case c <= 0x7f:
		return head{k: kInt, i: int64(c)}, nil
	case c >= 0xe0:
		return head{k: kInt, i: int64(int8(c))}, nil
	case c&0xf0 == 0x80:
		h = head{k: kMap, n: int(c & 0x0f)}
	case c&0xf0 == 0x90:
		h = head{k: kArray, n: int(c & 0x0f)}
	case c&0xe0 == 0xa0:
		h = head{k: kStr, n: int(c & 0x1f)}
	default:
		switch c {
		case 0xc0:
			return head{k: kNil}, nil
		case 0xc2, 0xc3:
			return head{k: kBool, b: c == 0xc3}, nil
		case 0xc4, 0xc5, 0xc6:
			h.k = kBin
			h.n, err = d.length(1 << (c - 0xc4))
		case 0xc7, 0xc8, 0xc9:
			h.k = kExt
			if h.n, err = d.length(1 << (c - 0xc7)); err == nil {
				var t uint8
				t, err = d.u8()
				h.ext = int8(t)
			}
		case 0xca:
			var v uint32
			v, err = d.u32()
			h = head{k: kFloat, f: float64(math.Float32frombits(v))}
			return h, err
		case 0xcb:
			var v uint64
			v, err = d.u64()
			h = head{k: kFloat, f: math.Float64frombits(v)}
			return h, err
		case 0xcc:
			v, err := d.u8()
			return head{k: kInt, i: int64(v)}, err
		case 0xcd:
			v, err := d.u16()
			return head{k: kInt, i: int64(v)}, err
		case 0xce:
			v, err := d.u32()
			return head{k: kInt, i: int64(v)}, err
		case 0xcf:
			v, err := d.u64()
			if v > math.MaxInt64 {
				return head{k: kUint, u: v}, err
			}
			return head{k: kInt, i: int64(v)}, err
		case 0xd0:
			v, err := d.u8()
			return head{k: kInt, i: int64(int8(v))}, err
		case 0xd1:
			v, err := d.u16()
			return head{k: kInt, i: int64(int16(v))}, err
		case 0xd2:
			v, err := d.u32()
			return head{k: kInt, i: int64(int32(v))}, err
		case 0xd3:
			v, err := d.u64()
			return head{k: kInt, i: int64(v)}, err
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
			h.k = kExt
			h.n = 1 << (c - 0xd4)
			var t uint8
			t, err = d.u8()
			h.ext = int8(t)
		case 0xd9, 0xda, 0xdb:
			h.k = kStr
			h.n, err = d.length(1 << (c - 0xd9))
		case 0xdc, 0xdd:
			h.k = kArray
			h.n, err = d.length(2 << (c - 0xdc))
		case 0xde, 0xdf:
			h.k = kMap
			h.n, err = d.length(2 << (c - 0xde))
		default: // 0xc1 is never used
			return h, malformed("reserved byte 0x%02x at offset %d", c, start)
		}
	}
	if err != nil {
		return h, err
	}
	left := len(d.b) - d.i
	switch h.k {
	case kStr:
		if h.n > d.c.maxStr && !d.owned {
			return h, limit("str of %d bytes exceeds MaxStrLen %d", h.n, d.c.maxStr)
		}
	case kBin, kExt:
		if h.n > d.c.maxBin && !d.owned {
			return h, limit("bin/ext of %d bytes exceeds MaxBinLen %d", h.n, d.c.maxBin)
		}
	case kArray, kMap:
		if h.n > d.c.maxEntries {
			return h, limit("array/map of %d entries exceeds MaxEntries %d", h.n, d.c.maxEntries)
		}
		min := h.n
		if h.k == kMap {
			min *= 2
		}
		if min > left {
			return h, malformed("%d entries cannot fit in the %d bytes left at offset %d", h.n, left, d.i)
		}
		return h, nil
	}
	if h.n > left {
		return h, malformed("%d-byte payload cannot fit in the %d bytes left at offset %d", h.n, left, d.i)
	}
	return h, nil
}

func (d *decoder) take(n int) []byte {
	p := d.b[d.i : d.i+n : d.i+n]
	d.i += n
	return p
}

// skip validates one value without allocating.
func (d *decoder) skip(depth int) error {
	h, err := d.head()
	if err != nil {
		return err
	}
	switch h.k {
	case kStr:
		if !utf8.Valid(d.take(h.n)) {
			return malformed("str at offset %d is not valid UTF-8", d.i-h.n)
		}
	case kBin:
		d.take(h.n)
	case kExt:
		p := d.take(h.n)
		if h.ext == -1 {
			if _, err := decodeTimestamp(p); err != nil {
				return err
			}
		}
	case kArray, kMap:
		if depth >= d.c.maxDepth {
			return limit("nesting deeper than MaxDepth %d", d.c.maxDepth)
		}
		n := h.n
		if h.k == kMap {
			n *= 2
		}
		for range n {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// value decodes one value into the Go types documented on Decode.
func (d *decoder) value(depth int) (any, error) {
	h, err := d.head()
	if err != nil {
		return nil, err
	}
	switch h.k {
	case kNil:
		return nil, nil
	case kBool:
		return h.b, nil
	case kInt:
		return h.i, nil
	case kUint:
		return h.u, nil
	case kFloat:
		return h.f, nil
	case kStr:
		p := d.take(h.n)
		if !utf8.Valid(p) {
			return nil, malformed("str at offset %d is not valid UTF-8", d.i-h.n)
		}
		return string(p), nil
	case kBin:
		if d.owned {
			return d.take(h.n), nil
		}
		return append([]byte{}, d.take(h.n)...), nil
	case kExt:
		p := append([]byte{}, d.take(h.n)...)
		if fn, ok := d.c.extDecoders[h.ext]; ok {
			return fn(p)
		}
		if h.ext == -1 {
			return decodeTimestamp(p)
		}
		return Ext{Type: h.ext, Data: p}, nil
	case kArray:
		if depth >= d.c.maxDepth {
			return nil, limit("nesting deeper than MaxDepth %d", d.c.maxDepth)
		}
		a := make([]any, h.n)
		for i := range a {
			if a[i], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return a, nil
	case kMap:
		if depth >= d.c.maxDepth {
			return nil, limit("nesting deeper than MaxDepth %d", d.c.maxDepth)
		}
		return d.mapValue(h.n, depth)
	}
	return nil, malformed("unknown header kind")
}

func (d *decoder) mapValue(n, depth int) (any, error) {
	if d.c.ordered {
		m := make(Map, n)
		for i := range m {
			k, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if m[i].Value, err = d.value(depth + 1); err != nil {
				return nil, err
			}
			if b, ok := k.([]byte); ok {
				k = Bin(b)
			}
			m[i].Key = k
		}
		return m, nil
	}
	m := newStrMap(n)
	for range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if s, ok := k.(string); ok && m.origin == nil {
			m.m[s] = v // the common case, inline
			continue
		}
		if err := m.put(k, v); err != nil {
			return nil, err
		}
	}
	if d.c.mapHook != nil {
		return d.c.mapHook(m.m)
	}
	return m.m, nil
}

// strMap builds the map[string]any of one decoded map.
type strMap struct {
	m map[string]any
	n int
	// origin records the key each entry came from, once a key that is
	// not a str has shown up, so that two different keys with the same
	// string form are reported instead of one silently replacing the
	// other.
	origin map[string]any
}

func newStrMap(n int) strMap { return strMap{m: make(map[string]any, n), n: n} }

// putStr adds the pair k: v for a str key k. A repeated key keeps the
// last value, as in a Python dict.
func (s *strMap) putStr(k string, v any) error {
	if s.origin == nil {
		s.m[k] = v
		return nil
	}
	return s.put(k, v)
}

// put adds the pair k: v, converting k with keyString unless it is a str.
func (s *strMap) put(k, v any) error {
	ks, isStr := k.(string)
	if isStr && s.origin == nil {
		s.m[ks] = v
		return nil
	}
	if !isStr {
		var err error
		if ks, err = keyString(k); err != nil {
			return err
		}
		if b, ok := k.([]byte); ok {
			k = Bin(b)
		}
	}
	if s.origin == nil {
		s.origin = make(map[string]any, s.n)
		for x := range s.m {
			s.origin[x] = x
		}
	}
	if prev, ok := s.origin[ks]; ok && !sameKey(prev, k) {
		return malformed("map keys %s and %s both become the string key %q", keyDesc(prev), keyDesc(k), ks)
	}
	s.origin[ks] = k
	s.m[ks] = v
	return nil
}

// keyString converts a map key that is not a str to the string Python's
// str() gives the key (the conversion json.dumps applies to dict keys):
// integers in decimal, floats as Python's repr (see pyFloat), bool as
// "True" or "False", nil as "None", bin as its bytes (which must be valid
// UTF-8, as a str must), a timestamp as msgpack.Timestamp's repr, and a
// value from an ext hook by its String method, else by its kind if that
// is a bool, number or string. Array, map and Ext keys, and other hook
// values, are errors.
func keyString(k any) (string, error) {
	switch k := k.(type) {
	case nil:
		return "None", nil
	case bool:
		if k {
			return "True", nil
		}
		return "False", nil
	case int64:
		return strconv.FormatInt(k, 10), nil
	case uint64:
		return strconv.FormatUint(k, 10), nil
	case float64:
		return pyFloat(k), nil
	case string:
		return k, nil
	case []byte:
		if !utf8.Valid(k) {
			return "", malformed("bin map key %q is not valid UTF-8, so it has no string form", k)
		}
		return string(k), nil
	case time.Time:
		return fmt.Sprintf("Timestamp(seconds=%d, nanoseconds=%d)", k.Unix(), k.Nanosecond()), nil
	case []any, map[string]any, Map, Ext:
		return "", malformed("unhashable map key of type %T", k)
	}
	// a value produced by an ext hook
	if !isComparable(k) {
		return "", malformed("unhashable map key of type %T", k)
	}
	if s, ok := k.(fmt.Stringer); ok {
		return s.String(), nil
	}
	switch r := reflect.ValueOf(k); r.Kind() {
	case reflect.Bool:
		return keyString(r.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return keyString(r.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return keyString(r.Uint())
	case reflect.Float32, reflect.Float64:
		return keyString(r.Float())
	case reflect.String:
		return r.String(), nil
	}
	return "", malformed("map key of type %T has no String method to convert it to a string key", k)
}

// pyFloat formats f as Python's repr(float) does: the shortest decimal
// that reads back as f, in positional notation with at least one digit
// after the point ("1.0", "0.0001", "-0.0") when the decimal exponent is
// in [-4, 16), else in scientific notation with a signed exponent of at
// least two digits and no ".0" ("1e+16", "1.5e-05"); "nan", "inf" and
// "-inf" for the non-finite values.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d[.ddd]e±XX, Python's form
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// sameKey reports whether a and b, two keys of one map as decoded (bin
// keys as Bin), are the same key, so that repeating it keeps the last
// value instead of being a collision.
func sameKey(a, b any) bool {
	switch a := a.(type) {
	case float64:
		bf, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(bf)
	case time.Time:
		bt, ok := b.(time.Time)
		return ok && a.Equal(bt)
	}
	return a == b // both comparable: keyString accepted them
}

// keyDesc describes a decoded map key for an error message.
func keyDesc(k any) string {
	switch k := k.(type) {
	case string:
		return "str " + strconv.Quote(k)
	case Bin:
		return "bin " + strconv.Quote(string(k))
	case nil:
		return "nil"
	}
	return fmt.Sprintf("%T %v", k, k)
}

func isComparable(v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = map[any]bool{v: true}
	return true
}

// decodeTimestamp decodes the payload of a timestamp extension (type -1).
func decodeTimestamp(p []byte) (time.Time, error) {
	switch len(p) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(p)), 0).UTC(), nil
	case 8:
		v := binary.BigEndian.Uint64(p)
		nsec := int64(v >> 34)
		if nsec >= 1e9 {
			return time.Time{}, malformed("timestamp nanoseconds %d out of range", nsec)
		}
		return time.Unix(int64(v&(1<<34-1)), nsec).UTC(), nil
	case 12:
		nsec := int64(binary.BigEndian.Uint32(p))
		if nsec >= 1e9 {
			return time.Time{}, malformed("timestamp nanoseconds %d out of range", nsec)
		}
		return time.Unix(int64(binary.BigEndian.Uint64(p[4:])), nsec).UTC(), nil
	}
	return time.Time{}, malformed("timestamp of %d bytes", len(p))
}
