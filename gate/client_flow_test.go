package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// flowSettings are test settings with a small window.
func flowSettings(items int, windowBytes int64) Settings {
	set := DefaultSettings()
	set.Heartbeat = 250 * time.Millisecond
	set.ReplyTimeout = 5 * time.Second
	set.ReconnectBackoff = 20 * time.Millisecond
	set.ReconnectBackoffMax = 100 * time.Millisecond
	set.StreamReplyMaxSize = items
	set.FlowWindowBytes = windowBytes
	return set
}

// creditOf parses a Gate.credit request: the call's id and the totals.
func creditOf(t testing.TB, req wire.ClientRequest) ([]byte, wire.Credit) {
	t.Helper()
	fn, args, _ := decodeBody(t, req.Body)
	if req.Service != "Gate" || fn != wire.CreditFunction || len(args) != 3 {
		t.Fatalf("credit = %s.%s%v, want Gate.credit(id, items, bytes)", req.Service, fn, args)
	}
	id, _ := args[0].([]byte)
	n := func(v any) int64 {
		switch x := v.(type) {
		case int64:
			return x
		case uint64:
			return int64(x)
		}
		t.Fatalf("credit total %T %v, want an integer", v, v)
		return 0
	}
	return id, wire.Credit{Items: n(args[1]), Bytes: n(args[2])}
}

// windowedPeer plays broker and gate worker for one call: it sends bodies
// as replies while honouring the window the call announced, waiting for
// Gate.credit between them. End and error markers are never held back.
type windowedPeer struct {
	rb      *rawBroker
	routing []byte
	req     wire.ClientRequest
	win     wire.Window
	sent    wire.Credit
	credit  wire.Credit
	credits []wire.Credit // every credit received, in order
	waits   int           // times the window was full
	cancels int           // Gate.cancel for the call
}

func newWindowedPeer(t testing.TB, rb *rawBroker, routing []byte, req wire.ClientRequest) *windowedPeer {
	t.Helper()
	_, meta, err := wire.DecodeRequestID(req.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	win, err := wire.ParseWindow(meta.MD[wire.MetaWindow])
	if err != nil {
		t.Fatalf("no window announced: %v", err)
	}
	return &windowedPeer{rb: rb, routing: routing, req: req, win: win}
}

// await reads one message from the client: a credit (checked cumulative)
// or a cancel for the call. It reports false when the call was cancelled.
func (p *windowedPeer) await(t testing.TB, ctx context.Context) bool {
	t.Helper()
	routing, req := p.rb.recv(t, ctx)
	if !bytes.Equal(routing, p.routing) {
		t.Fatalf("message from another peer %x", routing)
	}
	fn, args, _ := decodeBody(t, req.Body)
	switch {
	case req.Service == "Gate" && fn == "cancel":
		if len(args) != 1 || !bytes.Equal(args[0].([]byte), p.req.RequestID) {
			t.Fatalf("cancel of %v, want the call's id", args)
		}
		p.cancels++
		return false
	case req.Service == "Gate" && fn == wire.CreditFunction:
		if bytes.Equal(req.RequestID, p.req.RequestID) {
			t.Fatalf("credit sent under the call's own id")
		}
		id, cr := creditOf(t, req)
		if !bytes.Equal(id, p.req.RequestID) {
			t.Fatalf("credit for %x, want the call's id %x", id, p.req.RequestID)
		}
		if cr.Items < p.credit.Items || cr.Bytes < p.credit.Bytes {
			t.Fatalf("credit %+v after %+v: not cumulative", cr, p.credit)
		}
		if cr.Items > p.sent.Items || cr.Bytes > p.sent.Bytes {
			t.Fatalf("credit %+v beyond what was sent %+v", cr, p.sent)
		}
		p.credit = cr
		p.credits = append(p.credits, cr)
		return true
	}
	t.Fatalf("unexpected %s.%s from the client", req.Service, fn)
	return false
}

// send sends bodies, honouring the window. It stops early (false) when the
// client cancels the call.
func (p *windowedPeer) send(t testing.TB, ctx context.Context, bodies ...[][]byte) bool {
	t.Helper()
	for _, body := range bodies {
		kind, payload := wire.ClassifyReply(body)
		counted := kind == wire.ReplyStreamItem || kind == wire.ReplyHugeChunk
		if counted {
			if !p.win.MaySend(p.sent, p.credit) {
				p.waits++
			}
			for !p.win.MaySend(p.sent, p.credit) {
				if !p.await(t, ctx) {
					return false
				}
			}
			p.sent.Items++
			p.sent.Bytes += int64(len(payload))
		}
		p.rb.reply(p.routing, p.req, body...)
	}
	return true
}

func itemBody(t testing.TB, v any) [][]byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return wire.StreamItemBody(b)
}

func TestClientFlowAnnounced(t *testing.T) {
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tests := []struct {
		name       string
		set        Settings
		md         map[string]string // from middleware
		window     string            // "" = none announced
		chunk      string
		extraPairs int
	}{
		{name: "on", set: flowSettings(100, 64<<10), window: "100,65536", chunk: "262144"},
		{name: "on with traceparent", set: flowSettings(1024, 8<<20), md: map[string]string{"traceparent": tp}, window: "1024,8388608", chunk: "262144", extraPairs: 1},
		{name: "off", set: flowSettings(1024, -1)},
		{name: "off with traceparent", set: flowSettings(1024, -1), md: map[string]string{"traceparent": tp}, extraPairs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := startRawBroker(t, true)
			mw := func(next Handler) Handler {
				return HandlerFunc(func(ctx context.Context, req *Request, w ReplyWriter) error {
					for k, v := range tt.md {
						req.Metadata[k] = v
					}
					return next.ServeRPC(ctx, req, w)
				})
			}
			c := testClient(t, rb.endpoint, rb.zctx, WithSettings(tt.set), WithMiddleware(mw))
			ctx := testCtx(t)
			errc := make(chan error, 1)
			go func() { _, err := c.Call(ctx, "Svc.m"); errc <- err }()
			routing, req := rb.recvFn(t, ctx, "m")
			_, meta, err := wire.DecodeRequestID(req.RequestID)
			if err != nil {
				t.Fatal(err)
			}
			if got := meta.MD[wire.MetaWindow]; got != tt.window {
				t.Errorf("%s = %q, want %q", wire.MetaWindow, got, tt.window)
			}
			if got := meta.MD[wire.MetaChunk]; got != tt.chunk {
				t.Errorf("%s = %q, want %q", wire.MetaChunk, got, tt.chunk)
			}
			if got, want := meta.MD[wire.MetaBatch], map[bool]string{true: streamBatch}[tt.window != ""]; got != want {
				t.Errorf("%s = %q, want %q", wire.MetaBatch, got, want)
			}
			if _, ok := meta.MD[wire.MetaRelay]; ok {
				t.Errorf("client sent %s", wire.MetaRelay)
			}
			want := tt.extraPairs
			if tt.window != "" {
				want += 3
			}
			if len(meta.MD) != want || (tt.md != nil && meta.MD["traceparent"] != tp) {
				t.Errorf("metadata %v, want %d pairs with the middleware's", meta.MD, want)
			}
			if meta.Budget <= 0 {
				t.Errorf("budget %v lost", meta.Budget)
			}
			ok, _ := codec.EncodeResult(1)
			rb.reply(routing, req, ok)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("metadata limit counts the flow pairs", func(t *testing.T) {
		rb := startRawBroker(t, true)
		mw := func(next Handler) Handler {
			return HandlerFunc(func(ctx context.Context, req *Request, w ReplyWriter) error {
				for i := range wire.MaxExtPairs - 1 {
					req.Metadata[fmt.Sprintf("k%02d", i)] = "v"
				}
				return next.ServeRPC(ctx, req, w)
			})
		}
		c := testClient(t, rb.endpoint, rb.zctx, WithMiddleware(mw))
		_, err := c.Call(testCtx(t), "Svc.m")
		if CodeOf(err) != InvalidArgument || !strings.Contains(err.Error(), "3 of them for flow control") {
			t.Fatalf("Call = %v, want InvalidArgument naming the flow-control pairs", err)
		}
	})
}

// TestClientFlowCredits checks the Gate.credit values: cumulative totals,
// sent when half a window (items or bytes) was consumed since the last.
func TestClientFlowCredits(t *testing.T) {
	t.Run("items", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx, WithSettings(flowSettings(8, 1<<20)))
		ctx := testCtx(t)
		s, err := StreamAs[int](ctx, c, "Svc.gen")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		routing, req := rb.recvFn(t, ctx, "gen")
		p := newWindowedPeer(t, rb, routing, req)
		var sizes []int64 // payload bytes of item i
		for i := range 8 {
			body := itemBody(t, i*1000)
			sizes = append(sizes, int64(len(body[1])))
			p.send(t, ctx, body)
		}
		sum := func(n int) (b int64) {
			for _, s := range sizes[:n] {
				b += s
			}
			return b
		}
		for i := range 3 {
			if v, err := s.Recv(); err != nil || v != i*1000 {
				t.Fatalf("Recv = %v, %v", v, err)
			}
		}
		select {
		case m := <-rb.in:
			t.Fatalf("message after 3 of 8 items consumed: %q", m)
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		p.await(t, ctx)
		if want := (wire.Credit{Items: 4, Bytes: sum(4)}); p.credit != want {
			t.Fatalf("credit %+v after 4 items, want %+v", p.credit, want)
		}
		for range 4 {
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		p.await(t, ctx)
		if want := (wire.Credit{Items: 8, Bytes: sum(8)}); p.credit != want {
			t.Fatalf("credit %+v after 8 items, want %+v", p.credit, want)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx, WithSettings(flowSettings(1000, 1024)))
		ctx := testCtx(t)
		s, err := c.Stream(ctx, "Svc.gen")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		routing, req := rb.recvFn(t, ctx, "gen")
		p := newWindowedPeer(t, rb, routing, req)
		item := itemBody(t, bytes.Repeat([]byte("x"), 300)) // 303 payload bytes
		done := make(chan error, 1)
		go func() {
			for range 6 {
				if _, err := s.Recv(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		p.send(t, ctx, item, item, item, item, item, item)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for len(p.credits) < 3 {
			p.await(t, ctx)
		}
		// 2 items (606 bytes) reach half of 1024 bytes: a credit per 2 items.
		for i, cr := range p.credits {
			if want := (wire.Credit{Items: int64(2 * (i + 1)), Bytes: int64(606 * (i + 1))}); cr != want {
				t.Errorf("credit %d = %+v, want %+v", i, cr, want)
			}
		}
		if p.waits == 0 {
			t.Errorf("the producer never waited for credit with 6 items of 303 bytes in a 1024-byte window")
		}
	})
	t.Run("huge chunks fed to Call's decompressor", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx, WithSettings(flowSettings(4, 1<<20)))
		ctx := testCtx(t)
		big := noise(20000)
		chunks := gzipChunks(t, big, 1000)
		type res struct {
			v   any
			err error
		}
		done := make(chan res, 1)
		go func() { v, err := c.Call(ctx, "Svc.huge"); done <- res{v, err} }()
		routing, req := rb.recvFn(t, ctx, "huge")
		p := newWindowedPeer(t, rb, routing, req)
		var total int64
		for _, ch := range chunks {
			if !p.send(t, ctx, wire.HugeChunkBody(ch)) {
				t.Fatal("cancelled")
			}
			total += int64(len(ch))
		}
		p.send(t, ctx, wire.HugeEndBody())
		r := <-done
		if b, _ := r.v.([]byte); r.err != nil || !bytes.Equal(b, big) {
			t.Fatalf("Call = %T, %v; want the %d bytes", r.v, r.err, len(big))
		}
		if len(chunks) < 8 || p.waits == 0 || len(p.credits) == 0 {
			t.Fatalf("%d chunks, %d waits, %d credits: the window of 4 chunks was not exercised", len(chunks), p.waits, len(p.credits))
		}
		for i, cr := range p.credits {
			if cr.Items != int64(2*(i+1)) {
				t.Errorf("credit %d = %+v, want %d items (every 2 chunks)", i, cr, 2*(i+1))
			}
		}
		if c.Pending() != 0 {
			t.Errorf("Pending() = %d", c.Pending())
		}
	})
}

// TestClientFlowSlowReader: a reader that pauses makes the producer wait;
// no error (not even the per-item timeout, shorter than the pauses),
// nothing lost.
func TestClientFlowSlowReader(t *testing.T) {
	rb := startRawBroker(t, true)
	set := flowSettings(64, 4<<10)
	set.ReplyTimeout = 300 * time.Millisecond
	c := testClient(t, rb.endpoint, rb.zctx, WithSettings(set))
	ctx := testCtx(t)
	s, err := StreamAs[int](ctx, c, "Svc.gen")
	if err != nil {
		t.Fatal(err)
	}
	routing, req := rb.recvFn(t, ctx, "gen")
	const n = 10000
	errc := make(chan error, 1)
	go func() {
		defer s.Close()
		i := 0
		for v, err := range s.All() {
			if err != nil {
				errc <- fmt.Errorf("item %d: %w", i, err)
				return
			}
			if v != i {
				errc <- fmt.Errorf("item %d = %d", i, v)
				return
			}
			i++
			if i == 100 || i == 5000 {
				time.Sleep(2 * set.ReplyTimeout) // longer than the per-item timeout
			}
		}
		if i != n {
			errc <- fmt.Errorf("%d items, want %d", i, n)
			return
		}
		errc <- nil
	}()
	p := newWindowedPeer(t, rb, routing, req)
	for i := range n {
		if !p.send(t, ctx, itemBody(t, i)) {
			t.Fatalf("cancelled after %d items: %v", i, <-errc)
		}
	}
	p.send(t, ctx, wire.StreamEndBody())
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if p.waits < n/64 {
		t.Errorf("producer waited %d times for %d items in a 64-item window", p.waits, n)
	}
}

// TestClientStreamProducerWithoutWindow: a producer that ignores the
// window (a gaterpc 0.2.12 worker or broker) fails the stream with
// ResourceExhausted once it is 16 windows of items ahead of the reader
// (the §6 budget), with flow control on or off; the request is cancelled.
func TestClientStreamProducerWithoutWindow(t *testing.T) {
	for _, windowBytes := range []int64{-1, 1 << 20} {
		t.Run(fmt.Sprint("FlowWindowBytes=", windowBytes), func(t *testing.T) {
			rb := startRawBroker(t, true)
			c := testClient(t, rb.endpoint, rb.zctx, WithSettings(flowSettings(100, windowBytes)))
			ctx := testCtx(t)
			s, err := StreamAs[int](ctx, c, "Svc.gen")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			routing, req := rb.recvFn(t, ctx, "gen")
			for i := range 2000 {
				rb.reply(routing, req, itemBody(t, i)...)
			}
			_, cr := rb.recvFn(t, ctx, "cancel") // the client gave up on its own
			if _, args, _ := decodeBody(t, cr.Body); !bytes.Equal(args[0].([]byte), req.RequestID) {
				t.Fatalf("cancel of %x", args[0])
			}
			got := 0
			var last error
			for v, err := range s.All() {
				if err != nil {
					last = err
					break
				}
				if v != got {
					t.Fatalf("item %d = %d", got, v)
				}
				got++
			}
			if got != 16*100 || CodeOf(last) != ResourceExhausted || !strings.Contains(last.Error(), "stream reader too slow") {
				t.Fatalf("%d items then %v; want the 1600-item budget then ResourceExhausted: stream reader too slow", got, last)
			}
		})
	}
}

// hugeBodies compresses the msgpack encoding of v and cuts it into chunk
// bodies followed by the end marker.
func hugeBodies(t testing.TB, comp string, v any, size int) ([][][]byte, int64) {
	t.Helper()
	raw, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var z []byte
	switch comp {
	case "gzip":
		z = bytes.Join(gzipChunks(t, v, len(raw)+64), nil)
	case "zstd":
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		z = enc.EncodeAll(raw, nil)
		enc.Close()
	}
	var bodies [][][]byte
	for b := z; len(b) > 0; {
		n := min(size, len(b))
		bodies = append(bodies, wire.HugeChunkBody(b[:n]))
		b = b[n:]
	}
	return append(bodies, wire.HugeChunkBody(nil), wire.HugeEndBody()), int64(len(z))
}

func TestClientHugeReader(t *testing.T) {
	value := noise(3 << 20)
	want := sha256.Sum256(value)
	for _, comp := range []string{"gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			rb := startRawBroker(t, true)
			c := testClient(t, rb.endpoint, rb.zctx, WithSettings(flowSettings(16, 64<<10)))
			ctx := testCtx(t)
			bodies, total := hugeBodies(t, comp, value, 16<<10)
			type res struct {
				r   *HugeReader
				err error
			}
			opened := make(chan res, 1)
			go func() { r, err := c.CallReader(ctx, "Svc.blob"); opened <- res{r, err} }()
			routing, req := rb.recvFn(t, ctx, "blob")
			p := newWindowedPeer(t, rb, routing, req)
			p.send(t, ctx, bodies[0])
			o := <-opened
			if o.err != nil {
				t.Fatal(o.err)
			}
			defer o.r.Close()
			readc := make(chan error, 1)
			go func() {
				body, size, err := ReadBinary(o.r)
				if err != nil {
					readc <- err
					return
				}
				h := sha256.New()
				n, err := io.Copy(h, body)
				switch {
				case err != nil:
				case n != size || size != int64(len(value)):
					err = fmt.Errorf("read %d of %d bytes, want %d", n, size, len(value))
				case !bytes.Equal(h.Sum(nil), want[:]):
					err = errors.New("content differs")
				default:
					if _, err = o.r.Read(make([]byte, 1)); err == io.EOF {
						err = nil
					} else {
						err = fmt.Errorf("Read after the value = %v, want io.EOF", err)
					}
				}
				readc <- err
			}()
			if !p.send(t, ctx, bodies[1:]...) {
				t.Fatalf("cancelled: %v", <-readc)
			}
			if err := <-readc; err != nil {
				t.Fatal(err)
			}
			if p.waits == 0 || len(p.credits) == 0 {
				t.Fatalf("%d chunks, %d waits, %d credits: the window was not exercised", len(bodies), p.waits, len(p.credits))
			}
			last := p.credits[len(p.credits)-1]
			if last.Bytes > total || last.Items > int64(len(bodies)-1) {
				t.Fatalf("last credit %+v beyond the %d chunks, %d bytes sent", last, len(bodies)-1, total)
			}
		})
	}
	t.Run("paused reader", func(t *testing.T) {
		rb := startRawBroker(t, true)
		set := flowSettings(8, 64<<10)
		set.ReplyTimeout = 300 * time.Millisecond
		c := testClient(t, rb.endpoint, rb.zctx, WithSettings(set))
		ctx := testCtx(t)
		bodies, _ := hugeBodies(t, "gzip", value, 16<<10)
		readc := make(chan error, 1)
		go func() {
			r, err := c.CallReader(ctx, "Svc.blob")
			if err != nil {
				readc <- err
				return
			}
			defer r.Close()
			buf := make([]byte, 1<<20)
			if _, err := io.ReadFull(r, buf); err != nil {
				readc <- err
				return
			}
			time.Sleep(2 * set.ReplyTimeout) // the producer waits for credit meanwhile
			n, err := io.Copy(io.Discard, r)
			if err == nil && n+int64(len(buf)) != int64(len(value))+5 {
				err = fmt.Errorf("read %d bytes, want %d", n+int64(len(buf)), len(value)+5)
			}
			readc <- err
		}()
		routing, req := rb.recvFn(t, ctx, "blob")
		p := newWindowedPeer(t, rb, routing, req)
		if !p.send(t, ctx, bodies...) {
			t.Fatalf("cancelled: %v", <-readc)
		}
		if err := <-readc; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("streaming method", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx)
		ctx := testCtx(t)
		go func() {
			routing, req := rb.recvFn(t, ctx, "gen")
			rb.reply(routing, req, itemBody(t, 1)...)
		}()
		if _, err := c.CallReader(ctx, "Svc.gen"); CodeOf(err) != InvalidArgument || !strings.Contains(err.Error(), "Client.Stream") {
			t.Fatalf("CallReader of a stream = %v, want InvalidArgument pointing to Client.Stream", err)
		}
	})
	t.Run("single reply", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx)
		ctx := testCtx(t)
		go func() {
			routing, req := rb.recvFn(t, ctx, "small")
			ok, _ := codec.EncodeResult("hello")
			rb.reply(routing, req, ok)
		}()
		r, err := c.CallReader(ctx, "Svc.small")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		body, n, err := ReadBinary(r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(body)
		if err != nil || string(b) != "hello" || n != 5 {
			t.Fatalf("ReadBinary = %q (%d), %v", b, n, err)
		}
	})
	t.Run("remote error", func(t *testing.T) {
		rb := startRawBroker(t, true)
		c := testClient(t, rb.endpoint, rb.zctx)
		ctx := testCtx(t)
		go func() {
			routing, req := rb.recvFn(t, ctx, "bad")
			tr, _ := codec.EncodeTriple("ValueError", "ValueError('x')", "tb")
			rb.reply(routing, req, wire.HugeErrorBody(tr)...)
		}()
		if _, err := c.CallReader(ctx, "Svc.bad"); CodeOf(err) != InvalidArgument {
			t.Fatalf("CallReader = %v, want the remote ValueError", err)
		}
	})
	t.Run("bomb", func(t *testing.T) {
		rb := startRawBroker(t, true)
		set := flowSettings(1024, 8<<20)
		set.HugeDataMaxSize = 1 << 20
		c := testClient(t, rb.endpoint, rb.zctx, WithSettings(set))
		ctx := testCtx(t)
		bodies, _ := hugeBodies(t, "gzip", make([]byte, 8<<20), 1000)
		go func() {
			routing, req := rb.recvFn(t, ctx, "bomb")
			for _, b := range bodies {
				rb.reply(routing, req, b...)
			}
		}()
		r, err := c.CallReader(ctx, "Svc.bomb")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n, err := io.Copy(io.Discard, r)
		if !errors.Is(err, ErrTooLarge) || n > 1<<20 {
			t.Fatalf("read %d bytes, %v; want ErrTooLarge within 1 MiB", n, err)
		}
	})
}

// TestClientHugeReaderClose: Close in the middle of a value sends
// Gate.cancel and leaves nothing behind.
func TestClientHugeReaderClose(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx, WithSettings(flowSettings(8, 64<<10)))
	ctx := testCtx(t)
	value := noise(4 << 20)
	bodies, _ := hugeBodies(t, "zstd", value, 8<<10)
	opened := make(chan *HugeReader, 1)
	go func() {
		r, err := c.CallReader(ctx, "Svc.blob")
		if err != nil {
			t.Error(err)
		}
		opened <- r
	}()
	routing, req := rb.recvFn(t, ctx, "blob")
	p := newWindowedPeer(t, rb, routing, req)
	p.send(t, ctx, bodies[0])
	r := <-opened
	if r == nil {
		t.FailNow()
	}
	buf := make([]byte, 256<<10)
	closed := make(chan error, 1)
	go func() {
		if _, err := io.ReadFull(r, buf); err != nil {
			closed <- err
			return
		}
		closed <- r.Close() // mid-value: the producer waits on the window
	}()
	if p.send(t, ctx, bodies[1:]...) {
		t.Fatal("the whole value went out although the reader closed")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if p.cancels != 1 {
		t.Fatalf("%d Gate.cancel, want 1", p.cancels)
	}
	if _, err := r.Read(buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close = %v, want ErrClosed", err)
	}
	if n := c.Pending(); n != 0 {
		t.Fatalf("Pending() = %d after Close", n)
	}
}

// noise returns n pseudo-random (incompressible) bytes, the same each time.
func noise(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}
