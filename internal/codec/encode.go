package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

type encoder struct {
	c *Codec
	b []byte
}

func (e *encoder) encode(v any, depth int) error {
	if v != nil && e.c.hasHooks() {
		if fn := e.c.hookFor(reflect.TypeOf(v)); fn != nil {
			w, err := fn(v)
			if err != nil {
				return fmt.Errorf("codec: encode hook for %T: %w", v, err)
			}
			if w != nil && reflect.TypeOf(w) == reflect.TypeOf(v) {
				return fmt.Errorf("%w: encode hook for %T returned the same type", ErrUnsupportedType, v)
			}
			return e.encode(w, depth+1)
		}
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, 0xc0)
	case bool:
		e.bool(x)
	case int:
		e.int(int64(x))
	case int64:
		e.int(x)
	case int32:
		e.int(int64(x))
	case uint64:
		e.uint(x)
	case float64:
		e.float(x)
	case string:
		return e.str(x)
	case []byte:
		if x == nil {
			e.b = append(e.b, 0xc0)
			return nil
		}
		return e.bin(x)
	case RawMessage:
		if err := e.c.Validate(x); err != nil {
			return fmt.Errorf("codec: RawMessage: %w", err)
		}
		e.b = append(e.b, x...)
	case []any:
		if x == nil {
			e.b = append(e.b, 0xc0)
			return nil
		}
		if err := e.arrayHeader(len(x), depth); err != nil {
			return err
		}
		for _, el := range x {
			if err := e.encode(el, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if x == nil {
			e.b = append(e.b, 0xc0)
			return nil
		}
		if err := e.mapHeader(len(x), depth); err != nil {
			return err
		}
		var small [8]string // most maps have few keys: no allocation
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := e.str(k); err != nil {
				return err
			}
			if err := e.encode(x[k], depth+1); err != nil {
				return err
			}
		}
	case Map:
		if err := e.mapHeader(len(x), depth); err != nil {
			return err
		}
		for _, it := range x {
			if err := e.encode(it.Key, depth+1); err != nil {
				return err
			}
			if err := e.encode(it.Value, depth+1); err != nil {
				return err
			}
		}
	case Bin:
		return e.bin([]byte(x))
	case Ext:
		return e.ext(x.Type, x.Data)
	case time.Time:
		e.timestamp(x)
	default:
		return e.reflect(reflect.ValueOf(v), depth)
	}
	return nil
}

func (e *encoder) bool(x bool) {
	if x {
		e.b = append(e.b, 0xc3)
	} else {
		e.b = append(e.b, 0xc2)
	}
}

// int picks the smallest encoding by value, as Python does.
func (e *encoder) int(n int64) {
	if n >= 0 {
		e.uint(uint64(n))
		return
	}
	switch {
	case n >= -32:
		e.b = append(e.b, byte(n))
	case n >= math.MinInt8:
		e.b = append(e.b, 0xd0, byte(n))
	case n >= math.MinInt16:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xd2), uint32(n))
	default:
		e.b = binary.BigEndian.AppendUint64(append(e.b, 0xd3), uint64(n))
	}
}

func (e *encoder) uint(n uint64) {
	switch {
	case n <= 0x7f:
		e.b = append(e.b, byte(n))
	case n <= math.MaxUint8:
		e.b = append(e.b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xce), uint32(n))
	default:
		e.b = binary.BigEndian.AppendUint64(append(e.b, 0xcf), n)
	}
}

// float always writes float64, as Python does.
func (e *encoder) float(f float64) {
	e.b = binary.BigEndian.AppendUint64(append(e.b, 0xcb), math.Float64bits(f))
}

func (e *encoder) str(s string) error {
	if len(s) > e.c.maxStr {
		return limit("str of %d bytes exceeds MaxStrLen %d", len(s), e.c.maxStr)
	}
	if !utf8.ValidString(s) {
		return malformed("string is not valid UTF-8 (use []byte for binary data)")
	}
	e.b = AppendStr(e.b, s)
	return nil
}

func (e *encoder) bin(p []byte) error {
	if len(p) > e.c.maxBin {
		return limit("bin of %d bytes exceeds MaxBinLen %d", len(p), e.c.maxBin)
	}
	e.b = AppendBin(e.b, p)
	return nil
}

func (e *encoder) ext(typ int8, p []byte) error {
	if len(p) > e.c.maxBin {
		return limit("ext of %d bytes exceeds MaxBinLen %d", len(p), e.c.maxBin)
	}
	n := len(p)
	switch n {
	case 1:
		e.b = append(e.b, 0xd4)
	case 2:
		e.b = append(e.b, 0xd5)
	case 4:
		e.b = append(e.b, 0xd6)
	case 8:
		e.b = append(e.b, 0xd7)
	case 16:
		e.b = append(e.b, 0xd8)
	default:
		switch {
		case n <= math.MaxUint8:
			e.b = append(e.b, 0xc7, byte(n))
		case n <= math.MaxUint16:
			e.b = binary.BigEndian.AppendUint16(append(e.b, 0xc8), uint16(n))
		default:
			e.b = binary.BigEndian.AppendUint32(append(e.b, 0xc9), uint32(n))
		}
	}
	e.b = append(e.b, byte(typ))
	e.b = append(e.b, p...)
	return nil
}

// timestamp writes the msgpack timestamp extension (type -1) in the
// smallest form, as Python's msgpack.Timestamp.to_bytes does.
func (e *encoder) timestamp(t time.Time) {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	switch {
	case sec>>34 == 0 && nsec == 0 && sec <= math.MaxUint32:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xd6, 0xff), uint32(sec))
	case sec>>34 == 0:
		e.b = binary.BigEndian.AppendUint64(append(e.b, 0xd7, 0xff), uint64(nsec)<<34|uint64(sec))
	default:
		e.b = append(e.b, 0xc7, 12, 0xff)
		e.b = binary.BigEndian.AppendUint32(e.b, uint32(nsec))
		e.b = binary.BigEndian.AppendUint64(e.b, uint64(sec))
	}
}

func (e *encoder) arrayHeader(n, depth int) error {
	if n > e.c.maxEntries {
		return limit("array of %d elements exceeds MaxEntries %d", n, e.c.maxEntries)
	}
	if depth >= e.c.maxDepth {
		return limit("nesting deeper than MaxDepth %d", e.c.maxDepth)
	}
	e.b = AppendArrayHeader(e.b, n)
	return nil
}

func (e *encoder) mapHeader(n, depth int) error {
	if n > e.c.maxEntries {
		return limit("map of %d pairs exceeds MaxEntries %d", n, e.c.maxEntries)
	}
	if depth >= e.c.maxDepth {
		return limit("nesting deeper than MaxDepth %d", e.c.maxDepth)
	}
	e.b = AppendMapHeader(e.b, n)
	return nil
}

var (
	customEncoderType = reflect.TypeFor[msgpack.CustomEncoder]()
	marshalerType     = reflect.TypeFor[msgpack.Marshaler]()
)

// reflect encodes the kinds not covered by encode's fast path.
func (e *encoder) reflect(v reflect.Value, depth int) error {
	if depth > e.c.maxDepth {
		return limit("nesting deeper than MaxDepth %d", e.c.maxDepth)
	}
	t := v.Type()
	if v.CanInterface() && e.c.hasHooks() && e.c.hookFor(t) != nil {
		return e.encode(v.Interface(), depth) // goes through the hook
	}
	if v.CanInterface() && (t.Implements(marshalerType) || t.Implements(customEncoderType)) {
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil() {
			e.b = append(e.b, 0xc0)
			return nil
		}
		return e.delegate(v.Interface())
	}
	switch t.Kind() {
	case reflect.Bool:
		e.bool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.uint(v.Uint())
	case reflect.Float32, reflect.Float64:
		e.float(v.Float())
	case reflect.String:
		return e.str(v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			e.b = append(e.b, 0xc0)
			return nil
		}
		return e.value(v.Elem(), depth+1)
	case reflect.Slice:
		if v.IsNil() {
			e.b = append(e.b, 0xc0)
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return e.bin(v.Bytes())
		}
		return e.array(v, depth)
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			p := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(p), v)
			return e.bin(p)
		}
		return e.array(v, depth)
	case reflect.Map:
		if v.IsNil() {
			e.b = append(e.b, 0xc0)
			return nil
		}
		return e.gomap(v, depth)
	case reflect.Struct:
		return e.structure(v, depth)
	default:
		return fmt.Errorf("%w: %s", ErrUnsupportedType, t)
	}
	return nil
}

// value encodes a reflect.Value, using the fast path when possible.
func (e *encoder) value(v reflect.Value, depth int) error {
	if v.CanInterface() {
		return e.encode(v.Interface(), depth)
	}
	return e.reflect(v, depth)
}

func (e *encoder) array(v reflect.Value, depth int) error {
	n := v.Len()
	if err := e.arrayHeader(n, depth); err != nil {
		return err
	}
	for i := range n {
		if err := e.value(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// gomap encodes a Go map with its keys in ascending order: string keys by
// string order, other keys by their encoded bytes.
func (e *encoder) gomap(v reflect.Value, depth int) error {
	n := v.Len()
	if err := e.mapHeader(n, depth); err != nil {
		return err
	}
	type kv struct {
		key []byte
		val reflect.Value
		s   string
	}
	pairs := make([]kv, 0, n)
	stringKeys := v.Type().Key().Kind() == reflect.String
	it := v.MapRange()
	for it.Next() {
		sub := encoder{c: e.c}
		if err := sub.value(it.Key(), depth+1); err != nil {
			return err
		}
		p := kv{key: sub.b, val: it.Value()}
		if stringKeys {
			p.s = it.Key().String()
		}
		pairs = append(pairs, p)
	}
	if stringKeys {
		slices.SortFunc(pairs, func(a, b kv) int { return strings.Compare(a.s, b.s) })
	} else {
		slices.SortStableFunc(pairs, func(a, b kv) int { return bytes.Compare(a.key, b.key) })
	}
	for _, p := range pairs {
		e.b = append(e.b, p.key...)
		if err := e.value(p.val, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// delegate encodes a msgpack.Marshaler or msgpack.CustomEncoder with
// msgpack/v5 (compact ints, sorted map keys) and appends the result.
func (e *encoder) delegate(v any) error {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("codec: encode %T: %w", v, err)
	}
	if err := e.c.Validate(buf.Bytes()); err != nil {
		return fmt.Errorf("codec: encode %T: %w", v, err)
	}
	e.b = append(e.b, buf.Bytes()...)
	return nil
}

// field is one encoded struct field.
type field struct {
	name      string
	index     []int
	omitEmpty bool
}

var fieldCache sync.Map // reflect.Type -> []field

// structFields lists the fields of a struct type as msgpack/v5 does: the
// "msgpack" tag gives the name ("-" skips), ",omitempty" omits zero
// values, untagged embedded structs are inlined, unexported fields are
// skipped.
func structFields(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	var out []field
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("msgpack")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			ft := sf.Type
			if sf.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct && sf.Type.Kind() != reflect.Pointer {
					walk(ft, idx)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			out = append(out, field{name: name, index: idx, omitEmpty: strings.Contains(opts, "omitempty")})
		}
	}
	walk(t, nil)
	// A name defined at a shallower depth wins, as with msgpack/v5 and
	// encoding/json; among equals the first one is kept.
	seen := map[string]int{}
	var dedup []field
	for _, f := range out {
		if j, ok := seen[f.name]; ok {
			if len(f.index) < len(dedup[j].index) {
				dedup[j] = f
			}
			continue
		}
		seen[f.name] = len(dedup)
		dedup = append(dedup, f)
	}
	fieldCache.Store(t, dedup)
	return dedup
}

// structure encodes a struct as a map of its fields in declaration order.
func (e *encoder) structure(v reflect.Value, depth int) error {
	fields := structFields(v.Type())
	vals := make([]reflect.Value, 0, len(fields))
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		fv := v.FieldByIndex(f.index)
		if f.omitEmpty && fv.IsZero() {
			continue
		}
		vals = append(vals, fv)
		names = append(names, f.name)
	}
	if err := e.mapHeader(len(vals), depth); err != nil {
		return err
	}
	for i, fv := range vals {
		if err := e.str(names[i]); err != nil {
			return err
		}
		if err := e.value(fv, depth+1); err != nil {
			return err
		}
	}
	return nil
}
