package broker

import (
	"encoding/binary"
	"errors"
)

// A minimal msgpack encoder and decoder for the broker's own replies and
// for reading the internal service's arguments. It produces exactly the
// bytes Python's msgpack does for these shapes (str/bin in the smallest
// form, fixmap/fixarray), which the golden vectors pin.

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, s...)
}

func appendBin(b, p []byte) []byte {
	n := len(p)
	switch {
	case n < 1<<8:
		b = append(b, 0xc4, byte(n))
	case n < 1<<16:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, p...)
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n < 1<<16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdd)
		return binary.BigEndian.AppendUint32(b, uint32(n))
	}
}

func appendStrArray(b []byte, ss []string) []byte {
	b = appendArrayHeader(b, len(ss))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// resultMap encodes {"result": <value>, "exception": nil} where value is
// already msgpack.
func resultMap(value []byte) []byte {
	b := make([]byte, 0, 20+len(value))
	b = append(b, 0x82)
	b = appendStr(b, "result")
	b = append(b, value...)
	b = appendStr(b, "exception")
	return append(b, 0xc0)
}

// exceptionMap encodes {"result": nil, "exception": [class, repr, tb]}.
func exceptionMap(class, repr, traceback string) []byte {
	b := make([]byte, 0, 32+len(class)+len(repr)+len(traceback))
	b = append(b, 0x82)
	b = appendStr(b, "result")
	b = append(b, 0xc0)
	b = appendStr(b, "exception")
	b = append(b, 0x93)
	b = appendStr(b, class)
	b = appendStr(b, repr)
	return appendStr(b, traceback)
}

// exceptionTriple encodes [class, repr, tb] alone (stream error markers).
func exceptionTriple(class, repr, traceback string) []byte {
	b := make([]byte, 0, 8+len(class)+len(repr)+len(traceback))
	b = append(b, 0x93)
	b = appendStr(b, class)
	b = appendStr(b, repr)
	return appendStr(b, traceback)
}

// noExceptionSuffix ends every {"result": v, "exception": nil} map.
var noExceptionSuffix = []byte("\xa9exception\xc0")

var errMsgpack = errors.New("broker: unsupported msgpack")

// readStrOrBin reads one str or bin value at the start of b and returns
// its bytes, whether it was a str, and the remaining input.
func readStrOrBin(b []byte) (v []byte, isStr bool, rest []byte, err error) {
	if len(b) == 0 {
		return nil, false, nil, errMsgpack
	}
	c := b[0]
	var n, hdr int
	switch {
	case c&0xe0 == 0xa0:
		n, hdr, isStr = int(c&0x1f), 1, true
	case c == 0xd9 || c == 0xc4:
		if len(b) < 2 {
			return nil, false, nil, errMsgpack
		}
		n, hdr, isStr = int(b[1]), 2, c == 0xd9
	case c == 0xda || c == 0xc5:
		if len(b) < 3 {
			return nil, false, nil, errMsgpack
		}
		n, hdr, isStr = int(binary.BigEndian.Uint16(b[1:])), 3, c == 0xda
	case c == 0xdb || c == 0xc6:
		if len(b) < 5 {
			return nil, false, nil, errMsgpack
		}
		n, hdr, isStr = int(binary.BigEndian.Uint32(b[1:])), 5, c == 0xdb
	default:
		return nil, false, nil, errMsgpack
	}
	if n < 0 || len(b)-hdr < n {
		return nil, false, nil, errMsgpack
	}
	return b[hdr : hdr+n], isStr, b[hdr+n:], nil
}

// readArrayHeader reads an array header and returns the element count.
func readArrayHeader(b []byte) (n int, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, errMsgpack
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
	return 0, nil, errMsgpack
}

// methodName decodes body frame 0 as a msgpack str; "" if it is not one.
func methodName(body [][]byte) string {
	if len(body) == 0 {
		return ""
	}
	v, isStr, rest, err := readStrOrBin(body[0])
	if err != nil || !isStr || len(rest) != 0 {
		return ""
	}
	return string(v)
}

// readUint reads a non-negative msgpack integer (any int or uint format)
// below 2^62 and returns it with the remaining input.
func readUint(b []byte) (v int64, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, errMsgpack
	}
	c := b[0]
	var u uint64
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
		return 0, nil, errMsgpack
	}
	if len(b) < 1+n {
		return 0, nil, errMsgpack
	}
	for _, x := range b[1 : 1+n] {
		u = u<<8 | uint64(x)
	}
	signed := c >= 0xd0
	if signed && u>>(8*n-1) != 0 { // negative
		return 0, nil, errMsgpack
	}
	if u >= 1<<62 {
		return 0, nil, errMsgpack
	}
	return int64(u), b[1+n:], nil
}
