package gate

import (
	"testing"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// TestClientStreamBatch: the client splits a batch of stream items
// (wire.StreamBatchBody) into its items, in order with the single items
// around it, and counts each against the window; a batch that does not
// split into msgpack values fails the stream and cancels the call.
func TestClientStreamBatch(t *testing.T) {
	batch := func(vs ...int) [][]byte {
		var b []byte
		for _, v := range vs {
			enc, err := codec.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, enc...)
		}
		return wire.StreamBatchBody(b)
	}
	t.Run("items", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx, WithSettings(flowSettings(8, 1<<20)))
		ctx := testCtx(t)
		type res struct {
			got []int
			err error
		}
		done := make(chan res, 1)
		go func() {
			s, err := StreamAs[int](ctx, c, "Svc.m")
			if err != nil {
				done <- res{err: err}
				return
			}
			var r res
			for v, err := range s.All() {
				if err != nil {
					r.err = err
					break
				}
				r.got = append(r.got, v)
			}
			done <- r
		}()
		routing, req := rb.recvFn(t, ctx, "m")
		p := newWindowedPeer(t, rb, routing, req)
		// Batches count item by item: 0–4 and 5 fill most of the 8-item
		// window, 6–9 need the reader's credit first.
		p.rb.reply(routing, req, batch(0, 1, 2, 3, 4)...)
		p.sent = wire.Credit{Items: 5, Bytes: 5}
		p.send(t, ctx, itemBody(t, 5))
		for p.credit.Items < 4 {
			p.await(t, ctx)
		}
		p.rb.reply(routing, req, batch(6, 7, 8, 9)...)
		p.rb.reply(routing, req, wire.StreamEndBody()...)
		r := <-done
		if r.err != nil || len(r.got) != 10 {
			t.Fatalf("got %v, %v; want 0..9", r.got, r.err)
		}
		for i, v := range r.got {
			if v != i {
				t.Fatalf("got %v, want 0..9 in order", r.got)
			}
		}
	})
	t.Run("malformed", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx)
		ctx := testCtx(t)
		errc := make(chan error, 1)
		go func() {
			s, err := c.Stream(ctx, "Svc.m")
			if err == nil {
				for _, err = range s.All() {
					if err != nil {
						break
					}
				}
			}
			errc <- err
		}()
		routing, req := rb.recvFn(t, ctx, "m")
		b := batch(0)
		b[2] = append(b[2], 0xc1) // never used in msgpack
		rb.reply(routing, req, b...)
		p := newWindowedPeer(t, rb, routing, req)
		for p.await(t, ctx) { // credits until the cancel
		}
		if err := <-errc; CodeOf(err) != Internal {
			t.Fatalf("stream error %v, want Internal (malformed batch)", err)
		}
	})
}
