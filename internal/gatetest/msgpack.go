package gatetest

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Pack encodes v with a general-purpose msgpack library (not gate's
// codec), failing the test on error: bytes that a test builds this way
// check gate's codec instead of repeating it.
func Pack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatalf("gatetest: msgpack.Marshal(%v): %v", v, err)
	}
	return b
}

// CallBody is the body of a request calling fn with positional args and
// no keyword arguments: fn | [args...] | {}.
func CallBody(t testing.TB, fn string, args ...any) [][]byte {
	t.Helper()
	if args == nil {
		args = []any{}
	}
	return [][]byte{Pack(t, fn), Pack(t, args), {0x80}}
}

// ResultBody is a single reply body {"result": v, "exception": nil}.
func ResultBody(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteByte(0x82)
	b.Write(Pack(t, "result"))
	b.Write(Pack(t, v))
	b.Write(Pack(t, "exception"))
	b.WriteByte(0xc0)
	return b.Bytes()
}

// Served checks that the broker still serves service through w: a new
// raw client calls it, w answers, and the client gets that reply.
func (h *Harness) Served(t testing.TB, w *RawWorker, service string) {
	t.Helper()
	c := h.RawClient(t)
	rid := NewID("served")
	c.Request(service, rid, CallBody(t, "f")...)
	req := w.NextRequest(RecvTimeout)
	w.Reply(req.Client, req.RequestID, ResultBody(t, 1))
	if rep := c.NextReply(RecvTimeout); !bytes.Equal(rep.RequestID, rid) || len(rep.Body) != 1 || !bytes.Equal(rep.Body[0], ResultBody(t, 1)) {
		t.Fatalf("gatetest: %s not served: reply %q %x", service, rep.RequestID, rep.Body)
	}
}
