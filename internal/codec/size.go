package codec

import "encoding/binary"

// EncodedSize reports the size in bytes of the msgpack value that prefix
// starts, header included, when the header alone tells it: a bin or a str
// (the form of a HugeData payload that is one large blob or text). It
// returns false for every other value and for a prefix too short to hold
// the header. The receiver of a HugeData reply uses it to size its buffer
// once (chunk.WithSizeHint).
func EncodedSize(prefix []byte) (int64, bool) {
	if len(prefix) == 0 {
		return 0, false
	}
	b := prefix[0]
	switch {
	case b >= 0xa0 && b <= 0xbf: // fixstr
		return 1 + int64(b&0x1f), true
	case b == 0xc4 || b == 0xd9: // bin8, str8
		if len(prefix) < 2 {
			return 0, false
		}
		return 2 + int64(prefix[1]), true
	case b == 0xc5 || b == 0xda: // bin16, str16
		if len(prefix) < 3 {
			return 0, false
		}
		return 3 + int64(binary.BigEndian.Uint16(prefix[1:])), true
	case b == 0xc6 || b == 0xdb: // bin32, str32
		if len(prefix) < 5 {
			return 0, false
		}
		return 5 + int64(binary.BigEndian.Uint32(prefix[1:])), true
	}
	return 0, false
}
