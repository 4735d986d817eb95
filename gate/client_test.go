package gate

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/wire/wiretest"
)

const vectorsPath = "../internal/wire/testdata/vectors.txt"

func TestClientRequestFramesMatchVectors(t *testing.T) {
	vs := wiretest.Load(t, vectorsPath)
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx)
	base := vs.Get(t, "ID_REQUEST")
	c.newID = func() []byte { return bytes.Clone(base) }
	ctx := testCtx(t)

	type res struct {
		v   any
		err error
	}
	done := make(chan res, 1)
	go func() {
		v, err := c.Call(ctx, "echo", "a", 1, Kwargs{"k": true})
		done <- res{v, err}
	}()
	routing, req := rb.recvFn(t, ctx, "echo")
	frames := req.Frames()
	want := vs.Frames("REQ_ECHO_CLIENT_FRAME_")
	for i := range want {
		if i == 3 {
			continue // the id carries the deadline budget
		}
		if !bytes.Equal(frames[i], want[i]) {
			t.Errorf("frame %d = %x, want %x", i, frames[i], want[i])
		}
	}
	gotBase, meta, err := wire.DecodeRequestID(req.RequestID)
	if err != nil || !bytes.Equal(gotBase, base) {
		t.Fatalf("request id %x: base %x, %v; want base %x", req.RequestID, gotBase, err, base)
	}
	if meta.Budget <= 0 || meta.Budget > clientTestTimeout {
		t.Errorf("budget %v, want in (0, %v]", meta.Budget, clientTestTimeout)
	}
	rb.reply(routing, req, vs.Get(t, "V_SINGLETON_OK"))
	r := <-done
	if r.err != nil || r.v != int64(42) {
		t.Fatalf("Call = %v, %v; want 42", r.v, r.err)
	}
}

func TestClientKeepaliveFrames(t *testing.T) {
	vs := wiretest.Load(t, vectorsPath)
	rb := startRawBroker(t, false)
	testClient(t, rb.endpoint, rb.zctx)
	ctx := testCtx(t)
	// First get_services (on connect), then keepalives when idle.
	routing, req := rb.recvFn(t, ctx, "get_services")
	if req.Service != "Gate" {
		t.Fatalf("get_services sent to %q", req.Service)
	}
	rb.reply(routing, req, vs.Get(t, "V_GATE_KEEPALIVE_REPLY_200"))
	_, req = rb.recvFn(t, ctx, "keepalive")
	want := [][]byte{vs.Get(t, "V_GATE_KEEPALIVE_FUNC"), vs.Get(t, "V_GATE_KEEPALIVE_ARGS_BIN"), {0x80}}
	if req.Service != "Gate" || !reflect.DeepEqual(req.Body, want) {
		t.Fatalf("keepalive = %q %x, want Gate %x", req.Service, req.Body, want)
	}
}

// TestClientReplaysCapturedReplies feeds the B2C messages of the live
// capture to the client as answers to the captured requests.
func TestClientReplaysCapturedReplies(t *testing.T) {
	vs := wiretest.Load(t, vectorsPath)
	type seq struct {
		req   [][]byte   // C2B frames (DEALER view)
		reply [][][]byte // B2C messages (DEALER view)
	}
	seqs := map[string]*seq{}
	for _, m := range vs.Messages() {
		s := seqs[m.Seq]
		if s == nil {
			s = &seq{}
			seqs[m.Seq] = s
		}
		switch m.Leg {
		case "C2B":
			if s.req == nil {
				s.req = m.Frames
			}
		case "B2C":
			s.reply = append(s.reply, m.Frames[1:])
		}
	}
	unavailable := &Error{Code: Unavailable, Class: "ServiceUnAvailableError", Message: "ServiceUnAvailableError('The SRkv Service unavailable.')"}
	tests := []struct {
		seq  string
		want any  // result, or
		code Code // error code when want is nil
		cls  string
	}{
		{seq: "PLAIN_CALL", want: map[string]any{"args": []any{"a", int64(1)}, "kwargs": map[string]any{"k": true}}},
		{seq: "GENERATOR_3_ITEMS", want: []any{int64(0), int64(1), int64(2)}},
		{seq: "EXCEPTION", code: InvalidArgument, cls: "ValueError"},
		{seq: "GENERATOR_EXCEPTION", code: InvalidArgument, cls: "ValueError"},
		{seq: "HUGEDATA_5000_RANDOM_BYTES", want: 5000},
		{seq: "MISSING_SERVICE", code: Unavailable, cls: unavailable.Class},
		{seq: "BUSY_NO_IDLE_WORKER", code: ResourceExhausted, cls: "BusyWorkerError"},
		{seq: "MISSING_METHOD_SECURE_FALSE", code: Unimplemented, cls: "AttributeError"},
		{seq: "INTERNAL_KEEPALIVE", want: []byte("200")},
		{seq: "INTERNAL_KEEPALIVE_STR_ARG", want: []byte("400")},
	}
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx)
	for _, tt := range tests {
		t.Run(tt.seq, func(t *testing.T) {
			s := seqs[tt.seq]
			if s == nil || s.req == nil || len(s.reply) == 0 {
				t.Fatalf("sequence %s not in the capture", tt.seq)
			}
			req, err := wire.ParseClientRequest(s.req)
			if err != nil {
				t.Fatal(err)
			}
			fn, args, kwargs := decodeBody(t, req.Body)
			ctx := testCtx(t)
			type res struct {
				v   any
				err error
			}
			done := make(chan res, 1)
			go func() {
				v, err := c.Service(req.Service).CallKW(ctx, fn, args, kwargs)
				done <- res{v, err}
			}()
			routing, got := rb.recvFn(t, ctx, fn)
			if !reflect.DeepEqual(got.Body, req.Body) {
				t.Errorf("body = %x, want %x", got.Body, req.Body)
			}
			for _, m := range s.reply {
				rep, err := wire.ParseClientReply(m)
				if err != nil {
					t.Fatal(err)
				}
				rb.reply(routing, got, rep.Body...)
			}
			r := <-done
			switch {
			case tt.want == nil:
				var ge *Error
				if !errors.As(r.err, &ge) || ge.Code != tt.code || ge.Class != tt.cls || ge.Message == "" {
					t.Fatalf("Call = %v, %#v; want *Error %v %s", r.v, r.err, tt.code, tt.cls)
				}
			case tt.seq == "HUGEDATA_5000_RANDOM_BYTES":
				if b, ok := r.v.([]byte); r.err != nil || !ok || len(b) != tt.want.(int) {
					t.Fatalf("Call = %T (%v); want %d bytes", r.v, r.err, tt.want)
				}
			default:
				if r.err != nil || !reflect.DeepEqual(r.v, tt.want) {
					t.Fatalf("Call = %#v, %v; want %#v", r.v, r.err, tt.want)
				}
			}
			if n := c.Pending(); n != 0 {
				t.Errorf("Pending() = %d after the call", n)
			}
		})
	}
}

func decodeBody(t testing.TB, body [][]byte) (string, []any, map[string]any) {
	t.Helper()
	fn, rawArgs, rawKw, err := codec.DecodeRequestBody(body)
	if err != nil {
		t.Fatal(err)
	}
	var args []any
	for _, a := range rawArgs {
		v, err := codec.Decode(a)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, v)
	}
	kw := map[string]any{}
	for k, a := range rawKw {
		v, err := codec.Decode(a)
		if err != nil {
			t.Fatal(err)
		}
		kw[k] = v
	}
	return fn, args, kw
}

func TestClientMethodNames(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx, WithDefaultService("Dflt"))
	ctx := testCtx(t)
	tests := []struct{ method, service, fn string }{
		{"foo", "Dflt", "foo"},
		{"Svc.foo", "Svc", "foo"},
		{"a.b.foo", "a.b", "foo"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() { _, err := c.Call(ctx, tt.method); errc <- err }()
			routing, req := rb.recvFn(t, ctx, tt.fn)
			if req.Service != tt.service {
				t.Errorf("service = %q, want %q", req.Service, tt.service)
			}
			ok, _ := codec.EncodeResult(nil)
			rb.reply(routing, req, ok)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := c.Call(ctx, "Svc."); CodeOf(err) != InvalidArgument {
		t.Errorf("Call(\"Svc.\") = %v, want InvalidArgument", err)
	}
}

func TestClientDeadlineSendsCancel(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx)
	ctx := testCtx(t)
	callCtx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := c.Call(callCtx, "Svc.slow"); errc <- err }()
	_, req := rb.recvFn(t, ctx, "slow")
	_, meta, err := wire.DecodeRequestID(req.RequestID)
	if err != nil || meta.Budget <= 0 || meta.Budget > 150*time.Millisecond {
		t.Errorf("budget = %v, %v; want in (0, 150ms]", meta.Budget, err)
	}
	err = <-errc
	if !errors.Is(err, context.DeadlineExceeded) || CodeOf(err) != DeadlineExceeded {
		t.Fatalf("Call = %v, want context.DeadlineExceeded", err)
	}
	_, cr := rb.recvFn(t, ctx, "cancel")
	_, args, _ := decodeBody(t, cr.Body)
	if cr.Service != "Gate" || len(args) != 1 || !bytes.Equal(args[0].([]byte), req.RequestID) {
		t.Fatalf("cancel = %s %v, want Gate.cancel(%x)", cr.Service, args, req.RequestID)
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("Pending() = %d", n)
	}
}

func TestClientDefaultTimeout(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx, WithTimeout(100*time.Millisecond))
	start := time.Now()
	_, err := c.Call(context.Background(), "Svc.never")
	if !errors.Is(err, ErrTimeout) || CodeOf(err) != DeadlineExceeded {
		t.Fatalf("Call = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timed out after %v", d)
	}
}

func TestClientMetadataFromMiddleware(t *testing.T) {
	rb := startRawBroker(t, true)
	var info Info
	mw := func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request, w ReplyWriter) error {
			info = req.Info()
			req.Metadata["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
			return next.ServeRPC(ctx, req, w)
		})
	}
	c := testClient(t, rb.endpoint, rb.zctx, WithMiddleware(mw))
	ctx := testCtx(t)
	errc := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "Svc.m"); errc <- err }()
	routing, req := rb.recvFn(t, ctx, "m")
	_, meta, err := wire.DecodeRequestID(req.RequestID)
	if err != nil || meta.MD["traceparent"] == "" {
		t.Fatalf("metadata = %v, %v", meta.MD, err)
	}
	ok, _ := codec.EncodeResult("x")
	rb.reply(routing, req, ok)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if info != (Info{Role: RoleClient, Service: "Svc", Method: "m"}) {
		t.Errorf("Info = %+v", info)
	}
}

func TestClientPendingTableBounded(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx, WithMessageMax(2))
	ctx := testCtx(t)
	for range 2 {
		go func() { _, _ = c.Call(ctx, "Svc.hold") }()
	}
	r1, q1 := rb.recvFn(t, ctx, "hold")
	r2, q2 := rb.recvFn(t, ctx, "hold")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Call(short, "Svc.third"); CodeOf(err) != ResourceExhausted {
		t.Fatalf("third call = %v, want ResourceExhausted", err)
	}
	// Room appears when a call finishes.
	errc := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "Svc.fourth"); errc <- err }()
	ok, _ := codec.EncodeResult(1)
	rb.reply(r1, q1, ok)
	r4, q4 := rb.recvFn(t, ctx, "fourth")
	rb.reply(r4, q4, ok)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	rb.reply(r2, q2, ok)
}

func TestClientBrokerLostAndReconnect(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx, WithHeartbeat(50*time.Millisecond))
	ctx := testCtx(t)
	errc := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "Svc.hang"); errc <- err }()
	first, _ := rb.recvFn(t, ctx, "hang")
	rb.mute <- true // the broker goes silent
	start := time.Now()
	err := <-errc
	if !errors.Is(err, ErrBrokerLost) || CodeOf(err) != Unavailable {
		t.Fatalf("Call = %v, want ErrBrokerLost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("broker loss noticed after %v", d)
	}
	rb.mute <- false
	// A later call succeeds over a new connection with a new routing id.
	for {
		errc := make(chan error, 1)
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		go func() { _, err := c.Call(callCtx, "Svc.again"); errc <- err }()
		routing, req := rb.recvFn(t, ctx, "again")
		if bytes.Equal(routing, first) {
			t.Fatalf("reconnected with the same routing id %x", routing)
		}
		ok, _ := codec.EncodeResult(true)
		rb.reply(routing, req, ok)
		err := <-errc
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no successful call after reconnect: %v", err)
		}
	}
}

func TestClientCloseFailsPending(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx)
	ctx := testCtx(t)
	errc := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "Svc.hang"); errc <- err }()
	rb.recvFn(t, ctx, "hang")
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Call = %v, want ErrClosed", err)
	}
	if _, err := c.Call(ctx, "Svc.after"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close = %v, want ErrClosed", err)
	}
	c.Close() // idempotent
}

func TestClientStreamFromPeer(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx)
	ctx := testCtx(t)
	s, err := c.Stream(ctx, "Svc.gen")
	if err != nil {
		t.Fatal(err)
	}
	routing, req := rb.recvFn(t, ctx, "gen")
	for _, v := range []any{1, nil, "x"} {
		b, _ := codec.Marshal(v)
		rb.reply(routing, req, wire.StreamItemBody(b)...)
	}
	rb.reply(routing, req, wire.StreamEndBody()...)
	var got []any
	for v, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if want := []any{int64(1), nil, "x"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("items = %#v, want %#v (nil items kept)", got, want)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv after end = %v, want io.EOF", err)
	}
}

func TestClientStreamEarlyCloseSendsCancel(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx)
	ctx := testCtx(t)
	s, err := StreamAs[int](ctx, c, "Svc.forever")
	if err != nil {
		t.Fatal(err)
	}
	routing, req := rb.recvFn(t, ctx, "forever")
	for i := range 5 {
		b, _ := codec.Marshal(i)
		rb.reply(routing, req, wire.StreamItemBody(b)...)
	}
	n := 0
	for v, err := range s.All() {
		if err != nil || v != n {
			t.Fatalf("item %d = %v, %v", n, v, err)
		}
		n++
		if n == 2 {
			break
		}
	}
	_, cr := rb.recvFn(t, ctx, "cancel")
	_, args, _ := decodeBody(t, cr.Body)
	if len(args) != 1 || !bytes.Equal(args[0].([]byte), req.RequestID) {
		t.Fatalf("cancel args %v, want the stream's id", args)
	}
	if _, err := s.Recv(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close = %v, want ErrClosed", err)
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("Pending() = %d", n)
	}
}

func TestClientStreamItemTimeout(t *testing.T) {
	rb := startRawBroker(t, true)
	set := DefaultSettings()
	set.ReplyTimeout = 200 * time.Millisecond
	c := testClient(t, rb.endpoint, rb.zctx, WithSettings(set))
	ctx := testCtx(t)
	s, err := c.Stream(ctx, "Svc.stall")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	routing, req := rb.recvFn(t, ctx, "stall")
	b, _ := codec.Marshal("first")
	rb.reply(routing, req, wire.StreamItemBody(b)...)
	if v, err := s.Recv(); err != nil || v != "first" {
		t.Fatalf("Recv = %v, %v", v, err)
	}
	if _, err := s.Recv(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Recv = %v, want ErrTimeout", err)
	}
}

func gzipChunks(t testing.TB, v any, size int) [][]byte {
	t.Helper()
	raw, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, 1)
	zw.Write(raw)
	zw.Close()
	var out [][]byte
	b := buf.Bytes()
	for len(b) > 0 {
		n := min(size, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func TestClientHugeFromPeer(t *testing.T) {
	big := strings.Repeat("gate huge data ", 70000) // ~1 MB
	tests := []struct {
		name   string
		max    int64
		chunks func(t testing.TB) [][][]byte // bodies
		check  func(t *testing.T, v any, err error)
	}{
		{
			name: "1MB",
			chunks: func(t testing.TB) [][][]byte {
				var bodies [][][]byte
				for _, ch := range gzipChunks(t, big, 1000) {
					bodies = append(bodies, wire.HugeChunkBody(ch))
				}
				return append(bodies, wire.HugeChunkBody(nil), wire.HugeEndBody())
			},
			check: func(t *testing.T, v any, err error) {
				if err != nil || v != big {
					t.Fatalf("Call = %d chars, %v", len(fmt.Sprint(v)), err)
				}
			},
		},
		{
			name: "truncated",
			chunks: func(t testing.TB) [][][]byte {
				ch := gzipChunks(t, big, 1000)
				return [][][]byte{wire.HugeChunkBody(ch[0]), wire.HugeChunkBody(ch[1]), wire.HugeEndBody()}
			},
			check: func(t *testing.T, v any, err error) {
				if err == nil || CodeOf(err) != Internal {
					t.Fatalf("Call = %v, want an Internal error", err)
				}
			},
		},
		{
			name: "bomb",
			max:  1 << 20,
			chunks: func(t testing.TB) [][][]byte {
				var bodies [][][]byte
				for _, ch := range gzipChunks(t, make([]byte, 8<<20), 1000) {
					bodies = append(bodies, wire.HugeChunkBody(ch))
				}
				return append(bodies, wire.HugeEndBody())
			},
			check: func(t *testing.T, v any, err error) {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Call = %v, want ErrTooLarge", err)
				}
			},
		},
		{
			name: "exception",
			chunks: func(t testing.TB) [][][]byte {
				tr, _ := codec.EncodeTriple("ValueError", "ValueError('x')", "tb")
				return [][][]byte{wire.HugeChunkBody(gzipChunks(t, 1, 1000)[0]), wire.HugeErrorBody(tr)}
			},
			check: func(t *testing.T, v any, err error) {
				var ge *Error
				if !errors.As(err, &ge) || ge.Class != "ValueError" || ge.Traceback != "tb" {
					t.Fatalf("Call = %#v", err)
				}
			},
		},
		{
			name: "empty",
			chunks: func(t testing.TB) [][][]byte {
				return [][][]byte{wire.HugeChunkBody(nil), wire.HugeEndBody()}
			},
			check: func(t *testing.T, v any, err error) {
				if CodeOf(err) != Internal {
					t.Fatalf("Call = %v, want Internal", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := startRawBroker(t, true)
			set := DefaultSettings()
			if tt.max > 0 {
				set.HugeDataMaxSize = tt.max
			}
			c := testClient(t, rb.endpoint, rb.zctx, WithSettings(set))
			ctx := testCtx(t)
			type res struct {
				v   any
				err error
			}
			done := make(chan res, 1)
			go func() { v, err := c.Call(ctx, "Svc.huge"); done <- res{v, err} }()
			routing, req := rb.recvFn(t, ctx, "huge")
			for _, body := range tt.chunks(t) {
				rb.reply(routing, req, body...)
			}
			r := <-done
			tt.check(t, r.v, r.err)
		})
	}
}

func TestClientHugeChunkTimeout(t *testing.T) {
	rb := startRawBroker(t, true)
	set := DefaultSettings()
	set.ReplyTimeout = 200 * time.Millisecond
	c := testClient(t, rb.endpoint, rb.zctx, WithSettings(set))
	ctx := testCtx(t)
	errc := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "Svc.stall"); errc <- err }()
	routing, req := rb.recvFn(t, ctx, "stall")
	rb.reply(routing, req, wire.HugeChunkBody(gzipChunks(t, "abc", 1000)[0][:12])...)
	if err := <-errc; !errors.Is(err, ErrTimeout) {
		t.Fatalf("Call = %v, want ErrTimeout", err)
	}
}

func TestClientConcurrentCallsRawEcho(t *testing.T) {
	rb := startRawBroker(t, true)
	c := testClient(t, rb.endpoint, rb.zctx)
	ctx := testCtx(t)
	stop := make(chan struct{})
	echoDone := make(chan struct{})
	go func() { // echo server: returns the first argument
		defer close(echoDone)
		for {
			select {
			case m := <-rb.in:
				req, _ := wire.ParseClientRequest(m[1:])
				_, args, _, _ := codec.DecodeRequestBody(req.Body)
				v, _ := codec.Decode(args[0])
				ok, _ := codec.EncodeResult(v)
				rb.reply(m[0], req, ok)
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-echoDone }()
	const goroutines, each = 50, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				n := int64(g*1000 + i)
				v, err := CallAs[int64](ctx, c, "Svc.echo", n)
				if err != nil || v != n {
					t.Errorf("echo(%d) = %v, %v", n, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
