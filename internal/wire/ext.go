package wire

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// Gate extends the protocol without new frames: a request id is opaque to
// 0.2.12 peers and echoed verbatim in every reply, so a gate client puts
// its metadata inside it. An extended request id is
//
//	ExtMagic | uvarint len(base) | base | uvarint budget_µs | uvarint n | n × (uvarint len | key | uvarint len | value)
//
// where base is the plain request id (16 random bytes), budget the
// remaining time the caller will wait (0 = unknown) and the pairs are
// string metadata such as W3C traceparent. A request id that does not
// start with ExtMagic is a plain id with no metadata.
const ExtMagic = "\x00GX1"

// Extension caps: an extended id is rejected beyond these.
// EncodeRequestID does not enforce them; a caller that puts more than
// MaxExtPairs pairs or more than MaxExtLen bytes into an id gets an id that
// DecodeRequestID rejects.
const (
	MaxExtPairs  = 32
	MaxExtLen    = 4096
	MaxRequestID = 255

	// MaxBudget is the largest budget an extended id carries;
	// EncodeRequestID clamps longer budgets to it.
	MaxBudget = 24 * time.Hour
)

// RequestMeta is what a gate request id carries besides its base id.
type RequestMeta struct {
	Budget time.Duration     // remaining caller budget when the id was encoded; 0 = none
	MD     map[string]string // propagation metadata (traceparent, tracestate, baggage)
}

// EncodeRequestID builds a request id. When meta carries nothing (a budget
// under one microsecond and no pairs) it returns base unchanged (a plain
// id). The budget is truncated to whole microseconds and clamped to
// MaxBudget; pairs are written in ascending key order, so the encoding is
// canonical and DecodeRequestID followed by EncodeRequestID reproduces it.
func EncodeRequestID(base []byte, meta RequestMeta) []byte {
	budget := min(meta.Budget, MaxBudget).Microseconds()
	if budget < 0 {
		budget = 0
	}
	if budget == 0 && len(meta.MD) == 0 {
		return base
	}
	b := make([]byte, 0, len(ExtMagic)+len(base)+16+64*len(meta.MD))
	b = append(b, ExtMagic...)
	b = binary.AppendUvarint(b, uint64(len(base)))
	b = append(b, base...)
	b = binary.AppendUvarint(b, uint64(budget))
	b = binary.AppendUvarint(b, uint64(len(meta.MD)))
	for _, k := range sortedKeys(meta.MD) {
		v := meta.MD[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// IsExtended reports whether id carries gate metadata.
func IsExtended(id []byte) bool { return bytes.HasPrefix(id, []byte(ExtMagic)) }

// DecodeRequestID splits a request id into its base and metadata. A plain
// id returns itself as base and a zero RequestMeta.
//
// Only the canonical encoding that EncodeRequestID produces is accepted:
// minimal uvarints, a non-empty base, a budget of at most MaxBudget, keys
// in strictly ascending order (no duplicates), at least a budget or one
// pair, and no trailing bytes. Anything else is a *ProtocolError with
// ReasonExtension. base aliases id; the metadata strings are copies.
func DecodeRequestID(id []byte) (base []byte, meta RequestMeta, err error) {
	if !IsExtended(id) {
		return id, RequestMeta{}, nil
	}
	if len(id) > MaxExtLen {
		return nil, RequestMeta{}, perr(ReasonExtension, "extended request id of %d bytes exceeds %d", len(id), MaxExtLen)
	}
	p := id[len(ExtMagic):]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 || n != uvarintLen(v) { // reject overlong (non-minimal) encodings
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	take := func() ([]byte, bool) {
		n, ok := next()
		if !ok || n > uint64(len(p)) {
			return nil, false
		}
		s := p[:n]
		p = p[n:]
		return s, true
	}
	base, ok := take()
	if !ok || len(base) == 0 {
		return nil, RequestMeta{}, perr(ReasonExtension, "bad base id")
	}
	budget, ok := next()
	if !ok || budget > uint64(MaxBudget/time.Microsecond) {
		return nil, RequestMeta{}, perr(ReasonExtension, "bad budget")
	}
	meta.Budget = time.Duration(budget) * time.Microsecond
	n, ok := next()
	if !ok || n > MaxExtPairs {
		return nil, RequestMeta{}, perr(ReasonExtension, "bad metadata count")
	}
	if n == 0 && budget == 0 {
		return nil, RequestMeta{}, perr(ReasonExtension, "extended id without budget or metadata")
	}
	if n > 0 {
		meta.MD = make(map[string]string, n)
	}
	var prev []byte
	for i := uint64(0); i < n; i++ {
		k, ok1 := take()
		v, ok2 := take()
		if !ok1 || !ok2 {
			return nil, RequestMeta{}, perr(ReasonExtension, "truncated metadata pair %d", i)
		}
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			return nil, RequestMeta{}, perr(ReasonExtension, "metadata keys not in ascending order")
		}
		prev = k
		key := internKey(k)
		meta.MD[key] = internValue(key, v)
	}
	if len(p) != 0 {
		return nil, RequestMeta{}, perr(ReasonExtension, "%d trailing bytes", len(p))
	}
	return base, meta, nil
}

// internKey returns k as a string, without allocating for the W3C trace
// context keys that nearly every extended id carries.
func internKey(k []byte) string {
	switch string(k) { // no allocation: the compiler compares the bytes
	case "traceparent":
		return "traceparent"
	case "tracestate":
		return "tracestate"
	case "baggage":
		return "baggage"
	case MetaWindow:
		return MetaWindow
	case MetaChunk:
		return MetaChunk
	case MetaRelay:
		return MetaRelay
	case MetaBatch:
		return MetaBatch
	}
	return string(k)
}

// lastValues remembers the last value seen for each flow-control key: a
// client announces the same window and chunk size on every call, so
// decoding them usually allocates nothing.
var lastValues [4]atomic.Pointer[string]

// internValue returns v as a string, reusing the last value of a
// flow-control key when it is the same.
func internValue(key string, v []byte) string {
	var slot *atomic.Pointer[string]
	switch key {
	case MetaWindow:
		slot = &lastValues[0]
	case MetaChunk:
		slot = &lastValues[1]
	case MetaRelay:
		slot = &lastValues[2]
	case MetaBatch:
		slot = &lastValues[3]
	default:
		return string(v)
	}
	if p := slot.Load(); p != nil && *p == string(v) {
		return *p
	}
	s := string(v)
	slot.Store(&s)
	return s
}

// uvarintLen is the length of the minimal uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// insertion sort: metadata maps are tiny
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
