package gate

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/gaterpc/gate/internal/wire"
)

// Client side of flow control (docs/flow-control.md).
//
// With Settings.FlowWindowBytes > 0 every call announces its window
// (wire.MetaWindow: StreamReplyMaxSize items, FlowWindowBytes bytes) and
// the HugeData chunk size it wants (wire.MetaChunk) in its request id, and
// that it accepts batched stream items (wire.MetaBatch).
// As stream items reach the application and HugeData chunks reach the
// decompressor, the call's consumption grows; each time half a window has
// been consumed since the last grant the client sends the cumulative
// totals with the one-way Gate.credit(request_id, items, bytes) under a
// fresh id. A producer that honours the window never has more than one
// window beyond those grants, so a call buffers at most one window
// whatever the reader's speed.

// streamBatch is the most stream items per message the client accepts
// (wire.MetaBatch): it splits a batch into its items (clientLoop.handle).
const streamBatch = "128"

// flowPairs returns the metadata pairs every call announces, or nil when
// flow control is off. The map is shared and never modified.
func flowPairs(set Settings) (wire.Window, map[string]string) {
	if set.FlowWindowBytes <= 0 {
		return wire.Window{}, nil
	}
	w := wire.Window{Items: int64(set.StreamReplyMaxSize), Bytes: set.FlowWindowBytes}
	return w, map[string]string{
		wire.MetaWindow: w.String(),
		wire.MetaChunk:  strconv.Itoa(set.HugeDataChunkSize),
		wire.MetaBatch:  streamBatch,
	}
}

// requestMD returns md plus the flow-control pairs (md itself when there
// are none to add; a copy otherwise: md belongs to the Request).
func (c *Client) requestMD(md map[string]string) map[string]string {
	if c.flowMD == nil {
		return md
	}
	if len(md) == 0 {
		return c.flowMD
	}
	out := make(map[string]string, len(md)+len(c.flowMD))
	for k, v := range md {
		out[k] = v
	}
	for k, v := range c.flowMD {
		out[k] = v
	}
	return out
}

// callFlow is the flow-control state of one call.
//
// recv is owned by the client loop (under call.mu); the consumed and
// granted totals are atomics because the consumer (the caller's
// goroutine, a Stream's reader, a HugeReader) runs elsewhere.
type callFlow struct {
	// win bounds what a producer may have sent beyond what was consumed:
	// the announced window, or, with flow control off, StreamReplyMaxSize
	// items and the call's byte cap.
	win wire.Window
	// limit bounds what a stream reader buffers from a producer that does
	// not honour win (a 0.2.12 worker or broker in the path): a budget of
	// streamBudgetItems windows of items and at least streamBudgetBytes
	// bytes, within the call's byte cap. A producer that honours win never
	// comes near it.
	limit wire.Window
	// credit: the window was announced; grant credit as messages are
	// consumed.
	credit bool
	// strict: the application reads the stream items itself (Stream), so
	// a producer that overruns win fails the call ("stream reader too
	// slow") instead of growing the buffer.
	strict bool

	recv wire.Credit // stream items and HugeData chunks received

	items, bytes           atomic.Int64 // consumed
	grantItems, grantBytes atomic.Int64 // last credit sent
}

// The budget of a stream reader towards a producer without flow control
// (docs/flow-control.md §6): streamBudgetItems windows of items and at
// least streamBudgetBytes bytes.
const (
	streamBudgetItems = 16
	streamBudgetBytes = 64 << 20
)

func (f *callFlow) init(c *Client, spec *callSpec, maxBytes int64) {
	if c.flowMD != nil {
		f.win, f.credit = c.window, true
	} else {
		f.win = wire.Window{Items: int64(c.set.StreamReplyMaxSize), Bytes: maxBytes}
	}
	f.limit = wire.Window{
		Items: streamBudgetItems * f.win.Items,
		Bytes: min(maxBytes, max(streamBudgetItems*f.win.Bytes, streamBudgetBytes)),
	}
	f.strict = spec.reader
}

// received counts one stream item or HugeData chunk of n payload bytes
// (loop goroutine, under call.mu). For an application reader, a stream
// item beyond the budget of a producer that does not honour the window
// (limit) fails the call; one that honours it never gets there. HugeData chunks are never
// refused here: from a producer without flow control (0.2.12) they are
// bounded by the call's byte cap.
func (f *callFlow) received(kind wire.ReplyKind, n int64) error {
	if f.strict && kind == wire.ReplyStreamItem {
		consumed := wire.Credit{Items: f.items.Load(), Bytes: f.bytes.Load()}
		if !f.limit.MaySend(f.recv, consumed) {
			o := consumed.Outstanding(f.recv)
			return Errorf(ResourceExhausted, "stream reader too slow: %d items, %d bytes unread (limit %d items, %d bytes for a producer without flow control)",
				o.Items, o.Bytes, f.limit.Items, f.limit.Bytes)
		}
	}
	f.recv.Items++
	f.recv.Bytes += n
	return nil
}

// consume records items messages of bytes payload bytes consumed and
// reports the credit to grant when half a window (items or bytes) has been
// consumed since the last grant.
func (f *callFlow) consume(items, bytes int64) (wire.Credit, bool) {
	ci := f.items.Add(items)
	cb := f.bytes.Add(bytes)
	if !f.credit {
		return wire.Credit{}, false
	}
	gi, gb := f.grantItems.Load(), f.grantBytes.Load()
	if 2*(ci-gi) < f.win.Items && 2*(cb-gb) < f.win.Bytes {
		return wire.Credit{}, false
	}
	// One consumer per call: the CAS only guards against misuse (two
	// goroutines reading one Stream), where a lost race grants less.
	if !f.grantItems.CompareAndSwap(gi, ci) {
		return wire.Credit{}, false
	}
	f.grantBytes.Store(cb)
	return wire.Credit{Items: ci, Bytes: cb}, true
}

// stalled reports whether a producer honouring the window has used all
// the credit granted so far, so that no message is due until the reader
// consumes more (under call.mu).
func (f *callFlow) stalled() bool {
	if !f.credit {
		return false
	}
	granted := wire.Credit{Items: f.grantItems.Load(), Bytes: f.grantBytes.Load()}
	return !f.win.MaySend(f.recv, granted)
}

// consumed records that items messages (bytes payload bytes) of cl reached
// the application or the decompressor, and sends Gate.credit when one is
// due. ctx bounds the wait for room in the loop's queue; a credit that
// cannot be queued (ctx done, client closed) belongs to a call that is
// ending anyway.
func (c *Client) consumed(ctx context.Context, cl *call, items, bytes int64) {
	if cl == nil {
		return
	}
	cr, ok := cl.flow.consume(items, bytes)
	if !ok {
		return
	}
	// m.c = cl: the loop drops the credit if the call has finished, and
	// fails the call if the credit cannot be sent.
	_ = c.out.PushWait(ctx, outMsg{frames: c.creditFrames(cl.id, cr), c: cl})
	cl.wake() // a wait for the next message may time out again
}

// creditFrames builds Gate.credit(request_id, items, bytes), one-way: its
// fresh id belongs to no call, so any reply (a 0.2.12 broker's
// AttributeError) is ignored.
func (c *Client) creditFrames(id []byte, cr wire.Credit) [][]byte {
	return c.internalFrames(wire.CreditFunction, []any{id, uint64(cr.Items), uint64(cr.Bytes)})
}
