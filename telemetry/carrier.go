package telemetry

import (
	"maps"
	"slices"

	"go.opentelemetry.io/otel/propagation"
)

// metadataCarrier adapts Request.Metadata (and Dispatch.Metadata) to a
// propagation.TextMapCarrier. W3C keys are lower case, as the propagators
// write them; Get is an exact lookup.
type metadataCarrier map[string]string

var _ propagation.TextMapCarrier = metadataCarrier(nil)

// Get returns the value of key, or "".
func (c metadataCarrier) Get(key string) string { return c[key] }

// Set stores value under key. It must not be called on a nil carrier.
func (c metadataCarrier) Set(key, value string) { c[key] = value }

// Keys lists the keys in sorted order.
func (c metadataCarrier) Keys() []string { return slices.Sorted(maps.Keys(c)) }

// unsampledTraceparent reports whether h is a W3C traceparent that
// propagation.TraceContext accepts (same checks) and whose sampled flag
// is off. It allocates nothing: the broker's observer reads the flag of
// every request with it.
func unsampledTraceparent(h string) bool {
	// version "-" trace-id "-" parent-id "-" flags [ "-" more, version > 0 ]
	if len(h) < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return false
	}
	version, ok := hexByte(h[0], h[1])
	if !ok || version == 0xff {
		return false
	}
	flags, ok := hexByte(h[53], h[54])
	if !ok {
		return false
	}
	if version == 0 {
		if len(h) != 55 || flags > 3 {
			return false
		}
	} else if len(h) > 55 && h[55] != '-' {
		return false
	}
	return hexNonZero(h[3:35]) && hexNonZero(h[36:52]) && flags&1 == 0
}

// hexNonZero reports whether s is lower-case hex with a digit other than 0.
func hexNonZero(s string) bool {
	nonZero := false
	for i := range len(s) {
		c := s[i]
		switch {
		case c == '0':
		case '1' <= c && c <= '9', 'a' <= c && c <= 'f':
			nonZero = true
		default:
			return false
		}
	}
	return nonZero
}

// hexByte decodes two lower-case hex digits.
func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexDigit(hi)
	l, ok2 := hexDigit(lo)
	return h<<4 | l, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
