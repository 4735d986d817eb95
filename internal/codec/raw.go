package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
)

// Raw msgpack: the append and read primitives the encoder is built on,
// exported for code that writes or reads a few fixed shapes without the
// reflection of Marshal (the broker's internal service, health checks).
// They write exactly what Python's msgpack writes: every length in its
// smallest form.

// ErrRaw is returned by the Read functions for input that is not the
// expected msgpack type, or is truncated.
var ErrRaw = errors.New("codec: unexpected or truncated msgpack")

// AppendStr appends s as a msgpack str. It does not check UTF-8 or the
// MaxStrLen cap (Marshal does).
func AppendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// AppendBin appends p as a msgpack bin.
func AppendBin(b, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

// AppendArrayHeader appends the header of an array of n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

// AppendMapHeader appends the header of a map of n pairs.
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
	}
}

// AppendStrArray appends ss as an array of str.
func AppendStrArray(b []byte, ss []string) []byte {
	b = AppendArrayHeader(b, len(ss))
	for _, s := range ss {
		b = AppendStr(b, s)
	}
	return b
}

// Reply map keys as msgpack str, and the tail of a reply without an
// exception.
var (
	rawResultKey    = []byte("\xa6result")
	rawExceptionKey = []byte("\xa9exception")
	noException     = []byte("\xa9exception\xc0")
)

// ResultBytes returns the bytes between the prefix and the suffix of a
// reply laid out as {"result": v, "exception": nil} (keys in that order,
// as 0.2.12 and gate workers encode it), unvalidated: ok is false for any
// other layout. A caller that decodes v with a validating decoder (Decode,
// Unmarshal) gets v exactly when DecodeReply would return it; on a decode
// error it should fall back to DecodeReply, whose errors differ.
func ResultBytes(b []byte) (v RawMessage, ok bool) {
	if len(b) <= len(replyPrefix)+len(noException) || !bytes.HasPrefix(b, replyPrefix) || !bytes.HasSuffix(b, noException) {
		return nil, false
	}
	end := len(b) - len(noException)
	return RawMessage(b[len(replyPrefix):end:end]), true
}

// ResultMap returns {"result": value, "exception": nil}, where value is
// msgpack already, in gaterpc's key order.
func ResultMap(value []byte) []byte {
	b := make([]byte, 0, 1+len(rawResultKey)+len(value)+len(noException))
	b = append(b, 0x82)
	b = append(b, rawResultKey...)
	b = append(b, value...)
	return append(b, noException...)
}

// ExceptionMap returns {"result": nil, "exception": [class, repr, tb]}.
func ExceptionMap(class, repr, traceback string) []byte {
	b := make([]byte, 0, 32+len(class)+len(repr)+len(traceback))
	b = append(b, 0x82)
	b = append(b, rawResultKey...)
	b = append(b, 0xc0)
	b = append(b, rawExceptionKey...)
	return AppendTriple(b, class, repr, traceback)
}

// AppendTriple appends the exception triple [class, repr, tb].
func AppendTriple(b []byte, class, repr, traceback string) []byte {
	b = append(b, 0x93)
	b = AppendStr(b, class)
	b = AppendStr(b, repr)
	return AppendStr(b, traceback)
}

// HasNoException reports whether a single-reply body is a reply map
// without an exception, by its last bytes: gaterpc writes
// {"result": v, "exception": None} in that order, so a map ending in
// "exception": nil carries none. False means "decode to find out".
func HasNoException(body []byte) bool { return bytes.HasSuffix(body, noException) }

// ReadStrOrBin reads one str or bin value at the start of b and returns
// its bytes (aliasing b), whether it was a str, and the rest of the input.
func ReadStrOrBin(b []byte) (v []byte, isStr bool, rest []byte, err error) {
	if len(b) == 0 {
		return nil, false, nil, ErrRaw
	}
	c := b[0]
	var n, hdr int
	switch {
	case c&0xe0 == 0xa0:
		n, hdr, isStr = int(c&0x1f), 1, true
	case c == 0xd9 || c == 0xc4:
		if len(b) < 2 {
			return nil, false, nil, ErrRaw
		}
		n, hdr, isStr = int(b[1]), 2, c == 0xd9
	case c == 0xda || c == 0xc5:
		if len(b) < 3 {
			return nil, false, nil, ErrRaw
		}
		n, hdr, isStr = int(binary.BigEndian.Uint16(b[1:])), 3, c == 0xda
	case c == 0xdb || c == 0xc6:
		if len(b) < 5 {
			return nil, false, nil, ErrRaw
		}
		n, hdr, isStr = int(binary.BigEndian.Uint32(b[1:])), 5, c == 0xdb
	default:
		return nil, false, nil, ErrRaw
	}
	if n < 0 || len(b)-hdr < n {
		return nil, false, nil, ErrRaw
	}
	return b[hdr : hdr+n], isStr, b[hdr+n:], nil
}

// ReadArrayHeader reads an array header and returns the element count
// and the rest of the input.
func ReadArrayHeader(b []byte) (n int, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, ErrRaw
	}
	c := b[0]
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), b[1:], nil
	case c == 0xdc && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), b[3:], nil
	case c == 0xdd && len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:])), b[5:], nil
	}
	return 0, nil, ErrRaw
}

// ReadUint reads a non-negative msgpack integer (any int or uint format)
// below 2^62 and returns it with the rest of the input.
func ReadUint(b []byte) (v int64, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, ErrRaw
	}
	c := b[0]
	var n int
	switch {
	case c <= 0x7f:
		return int64(c), b[1:], nil
	case c == 0xcc || c == 0xd0:
		n = 1
	case c == 0xcd || c == 0xd1:
		n = 2
	case c == 0xce || c == 0xd2:
		n = 4
	case c == 0xcf || c == 0xd3:
		n = 8
	default:
		return 0, nil, ErrRaw
	}
	if len(b) < 1+n {
		return 0, nil, ErrRaw
	}
	var u uint64
	for _, x := range b[1 : 1+n] {
		u = u<<8 | uint64(x)
	}
	if c >= 0xd0 && u>>(8*n-1) != 0 { // a negative signed integer
		return 0, nil, ErrRaw
	}
	if u >= 1<<62 {
		return 0, nil, ErrRaw
	}
	return int64(u), b[1+n:], nil
}
