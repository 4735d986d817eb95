package codec

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// RawArgs are the positional arguments of a request, each kept as its own
// encoded msgpack value so it can be decoded straight into a typed
// parameter with Unmarshal. The slices alias the request frame.
type RawArgs []RawMessage

// RawKwargs are the keyword arguments of a request, each value kept
// encoded. The slices alias the request frame.
type RawKwargs map[string]RawMessage

// Exception is a remote exception as carried by a reply: the Python class
// name, repr() of the exception and the formatted traceback (empty when
// unknown). A reply whose exception is a plain string gives an Exception
// with only Repr set.
type Exception struct {
	Class     string
	Repr      string
	Traceback string
}

// Error renders the exception as "Class: Repr" (or just Repr).
func (e *Exception) Error() string {
	if e.Class == "" {
		return e.Repr
	}
	return e.Class + ": " + e.Repr
}

const maxBodyFrames = 3

// EncodeRequestBody encodes the body frames of a request as a 0.2.12
// client does: always three frames, msgpack(fn) as str, args as an array
// (90 when empty) and kwargs as a map (80 when empty) with sorted keys.
// Keyword names must not start with "__" (a 0.2.12 worker drops such
// requests).
func (c *Codec) EncodeRequestBody(fn string, args []any, kwargs map[string]any) ([][]byte, error) {
	for k := range kwargs {
		if strings.HasPrefix(k, "__") {
			return nil, fmt.Errorf("%w: keyword argument %q starts with \"__\"", ErrMalformed, k)
		}
	}
	// One buffer for the three frames (each frame a capped slice of it).
	e := encoder{c: c, b: make([]byte, 0, requestBodySizeHint(fn, args, kwargs))}
	if err := e.encode(fn, 0); err != nil {
		return nil, err
	}
	nf := len(e.b)
	if args == nil {
		args = []any{}
	}
	if err := e.encode(args, 0); err != nil {
		return nil, err
	}
	na := len(e.b)
	if kwargs == nil {
		kwargs = noKwargs
	}
	if err := e.encode(kwargs, 0); err != nil {
		return nil, err
	}
	return [][]byte{e.b[:nf:nf], e.b[nf:na:na], e.b[na:]}, nil
}

// noKwargs is the empty kwargs map of a request without any (read only).
var noKwargs = map[string]any{}

// requestBodySizeHint guesses the encoded size of a request body: the
// lengths of str and bin arguments plus their headers, 16 bytes for any
// other value.
func requestBodySizeHint(fn string, args []any, kwargs map[string]any) int {
	n := len(fn) + 16
	for _, a := range args {
		n += valueSizeHint(a)
	}
	for k, v := range kwargs {
		n += len(k) + 5 + valueSizeHint(v)
	}
	return n
}

func valueSizeHint(v any) int {
	switch x := v.(type) {
	case []byte:
		return len(x) + 5
	case string:
		return len(x) + 5
	}
	return 16
}

// DecodeRequestBody validates and splits a request body as a 0.2.12 worker
// does (docs/wire-protocol.md section 3.2): 1 to 3 frames; the first a str (the
// function name), the second an array (args), the third a map whose keys
// are all strs not starting with "__" (kwargs). Each frame must be exactly
// one msgpack value within the caps. Missing frames give empty args and
// kwargs. Errors wrap ErrMalformed or ErrLimit; a 0.2.12 worker answers
// none of these requests.
func (c *Codec) DecodeRequestBody(body [][]byte) (fn string, args RawArgs, kwargs RawKwargs, err error) {
	if len(body) < 1 || len(body) > maxBodyFrames {
		return "", nil, nil, malformed("request body has %d frames, want 1 to 3", len(body))
	}
	d := decoder{c: c, b: body[0]}
	h, err := d.head()
	if err != nil {
		return "", nil, nil, fmt.Errorf("function name: %w", err)
	}
	if h.k != kStr {
		return "", nil, nil, malformed("function name is not a str")
	}
	name := d.take(h.n)
	if d.i != len(body[0]) {
		return "", nil, nil, malformed("function name frame has %d trailing bytes", len(body[0])-d.i)
	}
	if !utf8.Valid(name) {
		return "", nil, nil, malformed("function name is not valid UTF-8")
	}
	fn = string(name)
	if len(body) > 1 {
		if args, err = c.splitArray(body[1]); err != nil {
			return "", nil, nil, fmt.Errorf("args: %w", err)
		}
	}
	if len(body) > 2 {
		if kwargs, err = c.splitKwargs(body[2]); err != nil {
			return "", nil, nil, fmt.Errorf("kwargs: %w", err)
		}
	}
	return fn, args, kwargs, nil
}

// splitArray checks that b is one array and returns its elements' bytes.
func (c *Codec) splitArray(b []byte) (RawArgs, error) {
	d := decoder{c: c, b: b}
	h, err := d.head()
	if err != nil {
		return nil, err
	}
	if h.k != kArray {
		return nil, malformed("not an array")
	}
	out := make(RawArgs, h.n)
	for i := range out {
		start := d.i
		if err := d.skip(1); err != nil {
			return nil, err
		}
		out[i] = RawMessage(b[start:d.i:d.i])
	}
	if d.i != len(b) {
		return nil, malformed("%d trailing bytes", len(b)-d.i)
	}
	return out, nil
}

// splitKwargs checks that b is one map with str keys not starting with
// "__" and returns its values' bytes.
func (c *Codec) splitKwargs(b []byte) (RawKwargs, error) {
	d := decoder{c: c, b: b}
	h, err := d.head()
	if err != nil {
		return nil, err
	}
	if h.k != kMap {
		return nil, malformed("not a map")
	}
	out := make(RawKwargs, h.n)
	for range h.n {
		kh, err := d.head()
		if err != nil {
			return nil, err
		}
		if kh.k != kStr {
			return nil, malformed("keyword name is not a str")
		}
		key := d.take(kh.n)
		if !utf8.Valid(key) {
			return nil, malformed("keyword name is not valid UTF-8")
		}
		if strings.HasPrefix(string(key), "__") {
			return nil, malformed("keyword name %q starts with \"__\"", key)
		}
		start := d.i
		if err := d.skip(1); err != nil {
			return nil, err
		}
		out[string(key)] = RawMessage(b[start:d.i:d.i])
	}
	if d.i != len(b) {
		return nil, malformed("%d trailing bytes", len(b)-d.i)
	}
	return out, nil
}

var (
	replyPrefix = []byte("\x82\xa6result")
	excKey      = []byte("\xa9exception")
)

// EncodeResult encodes a successful single reply exactly as a 0.2.12
// worker does: {"result": v, "exception": nil}, keys in that order.
func (c *Codec) EncodeResult(v any) ([]byte, error) {
	e := encoder{c: c, b: append(make([]byte, 0, 32), replyPrefix...)}
	if err := e.encode(v, 1); err != nil {
		return nil, err
	}
	e.b = append(e.b, excKey...)
	e.b = append(e.b, 0xc0)
	return e.b, nil
}

// EncodeException encodes a failed single reply:
// {"result": nil, "exception": [class, repr, traceback]}.
func (c *Codec) EncodeException(class, repr, traceback string) ([]byte, error) {
	e := encoder{c: c, b: append(make([]byte, 0, 32+len(class)+len(repr)+len(traceback)), replyPrefix...)}
	e.b = append(e.b, 0xc0)
	e.b = append(e.b, excKey...)
	if err := e.triple(class, repr, traceback); err != nil {
		return nil, err
	}
	return e.b, nil
}

// EncodeTriple encodes the exception triple [class, repr, traceback] on
// its own, as carried by stream and HugeData error frames.
func (c *Codec) EncodeTriple(class, repr, traceback string) ([]byte, error) {
	e := encoder{c: c}
	if err := e.triple(class, repr, traceback); err != nil {
		return nil, err
	}
	return e.b, nil
}

func (e *encoder) triple(class, repr, traceback string) error {
	e.b = append(e.b, 0x93)
	for _, s := range [...]string{class, repr, traceback} {
		if err := e.str(s); err != nil {
			return err
		}
	}
	return nil
}

// DecodeReply decodes a single reply map as a Python 0.2.12 client does.
// result is the encoded "result" value (c0, nil, when the key is missing). exc
// is nil when "exception" is missing or falsy in Python terms (nil, false,
// 0, 0.0, empty str, bin, array or map); a 3-element array of strs or a
// plain str gives an Exception. Anything else, or a body that is not a map,
// is an error wrapping ErrMalformed. result aliases b.
func (c *Codec) DecodeReply(b []byte) (result RawMessage, exc *Exception, err error) {
	// The common reply, {"result": v, "exception": nil} in that order as
	// 0.2.12 and gate workers encode it: only v needs validating.
	if len(b) > len(replyPrefix)+len(noException) && bytes.HasPrefix(b, replyPrefix) && bytes.HasSuffix(b, noException) {
		end := len(b) - len(noException)
		d := decoder{c: c, b: b[:end], i: len(replyPrefix)}
		if d.skip(1) == nil && d.i == end {
			return RawMessage(b[len(replyPrefix):end:end]), nil, nil
		}
	}
	d := decoder{c: c, b: b}
	h, err := d.head()
	if err != nil {
		return nil, nil, err
	}
	if h.k != kMap {
		return nil, nil, malformed("reply is not a map")
	}
	result = RawMessage{0xc0}
	var excRaw RawMessage
	for range h.n {
		kstart := d.i
		if err := d.skip(1); err != nil {
			return nil, nil, err
		}
		var key string
		kd := decoder{c: c, b: b[:d.i], i: kstart}
		if kh, _ := kd.head(); kh.k == kStr {
			key = string(kd.take(kh.n))
		}
		vstart := d.i
		if err := d.skip(1); err != nil {
			return nil, nil, err
		}
		switch key {
		case "result":
			result = RawMessage(b[vstart:d.i:d.i])
		case "exception":
			excRaw = RawMessage(b[vstart:d.i:d.i])
		}
	}
	if d.i != len(b) {
		return nil, nil, malformed("%d trailing bytes after the reply map", len(b)-d.i)
	}
	if excRaw == nil {
		return result, nil, nil
	}
	exc, err = c.decodeException(excRaw, true)
	if err != nil {
		return nil, nil, err
	}
	return result, exc, nil
}

// DecodeTriple decodes an exception triple (stream and HugeData error
// frames). A plain str is accepted as well, as for DecodeReply.
func (c *Codec) DecodeTriple(b []byte) (*Exception, error) {
	if err := c.Validate(b); err != nil {
		return nil, err
	}
	exc, err := c.decodeException(b, false)
	if err != nil {
		return nil, err
	}
	if exc == nil {
		return nil, malformed("empty exception")
	}
	return exc, nil
}

// decodeException interprets one validated value as an exception.
func (c *Codec) decodeException(b []byte, falsyOK bool) (*Exception, error) {
	d := decoder{c: c, b: b}
	h, err := d.head()
	if err != nil {
		return nil, err
	}
	falsy := false
	switch h.k {
	case kNil:
		falsy = true
	case kBool:
		falsy = !h.b
	case kInt:
		falsy = h.i == 0
	case kFloat:
		falsy = h.f == 0
	case kBin, kArray, kMap:
		falsy = h.n == 0
	case kStr:
		if h.n == 0 {
			falsy = true
			break
		}
		return &Exception{Repr: string(d.take(h.n))}, nil
	}
	if falsy {
		if falsyOK {
			return nil, nil
		}
		return nil, malformed("empty exception")
	}
	if h.k != kArray || h.n != 3 {
		return nil, malformed("exception is neither a [class, repr, traceback] triple nor a str")
	}
	var parts [3]string
	for i := range parts {
		sh, err := d.head()
		if err != nil {
			return nil, err
		}
		if sh.k != kStr {
			return nil, malformed("exception element %d is not a str", i)
		}
		parts[i] = string(d.take(sh.n))
	}
	return &Exception{Class: parts[0], Repr: parts[1], Traceback: parts[2]}, nil
}

// EncodeRequestBody encodes request body frames with the default codec.
func EncodeRequestBody(fn string, args []any, kwargs map[string]any) ([][]byte, error) {
	return std.EncodeRequestBody(fn, args, kwargs)
}

// DecodeRequestBody splits request body frames with the default codec.
func DecodeRequestBody(body [][]byte) (fn string, args RawArgs, kwargs RawKwargs, err error) {
	return std.DecodeRequestBody(body)
}

// EncodeResult encodes {"result": v, "exception": nil} with the default codec.
func EncodeResult(v any) ([]byte, error) { return std.EncodeResult(v) }

// EncodeException encodes {"result": nil, "exception": [class, repr,
// traceback]} with the default codec.
func EncodeException(class, repr, traceback string) ([]byte, error) {
	return std.EncodeException(class, repr, traceback)
}

// EncodeTriple encodes [class, repr, traceback] with the default codec.
func EncodeTriple(class, repr, traceback string) ([]byte, error) {
	return std.EncodeTriple(class, repr, traceback)
}

// DecodeReply decodes a single reply map with the default codec.
func DecodeReply(b []byte) (result RawMessage, exc *Exception, err error) {
	return std.DecodeReply(b)
}

// DecodeTriple decodes an exception triple with the default codec.
func DecodeTriple(b []byte) (*Exception, error) { return std.DecodeTriple(b) }
