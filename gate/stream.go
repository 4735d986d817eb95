package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"

	"github.com/gaterpc/gate/internal/wire"
)

// Stream is the reply of a streaming method (a worker generator), read
// item by item:
//
//	s, err := c.Stream(ctx, "Svc.count", 3)
//	if err != nil { ... }
//	defer s.Close()
//	for v, err := range s.All() { ... }
//
// Items are delivered in order, nil items included (unlike the Python
// client, quirk 16). A method that does not stream yields its single
// result (or HugeData value) as the only item.
//
// Flow control: one socket carries every call of a Client, so the client
// loop cannot stop reading for one slow stream (the Python client blocks
// its whole receive loop instead, stalling every other call). The stream
// instead grants its producer a window (docs/flow-control.md): at most
// Settings.StreamReplyMaxSize items and Settings.FlowWindowBytes payload
// bytes beyond what Recv has returned. A gate worker behind a gate broker
// waits for the reader, so a slow reader never fails and never buffers
// more than one window. A producer that does not honour the window (a
// gaterpc 0.2.12 worker or broker in the path, or a negative FlowWindowBytes, in
// which case the byte half of the window is Settings.HugeDataMaxSize)
// fails the stream with code ResourceExhausted ("stream reader too slow")
// when it gets 16 windows ahead of the reader (at least 64 MiB, at most
// HugeDataMaxSize), and the request is cancelled
// at the broker. Each item must arrive within Settings.ReplyTimeout of the
// previous one (the first one of the call), else the stream fails with
// [ErrTimeout]; a paused reader does not count against it.
//
// Close (or breaking out of the range loop over All) drops the request and
// sends Gate.cancel to the broker, which stops a gate worker's generator.
// Recv and All are for one goroutine; Close may be called from any.
type Stream struct {
	c *Client
	// ctx is the call's context, kept for the credits Recv sends (like
	// grpc's ClientStream).
	ctx    context.Context
	items  chan streamItem
	stop   chan struct{}
	done   chan struct{}
	cancel context.CancelFunc
	once   sync.Once

	err    error // final status; written before items is closed
	last   error // what Recv returned last, once terminal
	single bool  // the first item was a single reply (Recv's goroutine)
	seen   bool  // Recv returned an item
}

type streamItem struct {
	v      any
	single bool  // the method answered one value (a single or HugeData reply), not a stream
	cl     *call // the call it arrived on (credit), nil if not a stream item
	n      int64 // payload bytes
}

// Stream calls a streaming method and returns the stream of its items.
// method and args are as for [Client.Call] (a final [Kwargs] argument gives
// keyword arguments). The stream lives until it ends, fails, ctx is done,
// or Close is called; the caller must call Close unless it ranged over All
// to the end. Errors of the call itself (unknown service, remote
// exception) are reported by the first Recv.
func (c *Client) Stream(ctx context.Context, method string, args ...any) (*Stream, error) {
	args, kw := splitKW(args)
	svc, fn := c.splitMethod(method)
	return c.openStream(ctx, svc, fn, args, kw, anySpec(c))
}

// StreamKW is [Client.Stream] with explicit keyword arguments.
func (c *Client) StreamKW(ctx context.Context, method string, args []any, kwargs map[string]any) (*Stream, error) {
	svc, fn := c.splitMethod(method)
	return c.openStream(ctx, svc, fn, args, kwargs, anySpec(c))
}

func (c *Client) openStream(ctx context.Context, service, fn string, args []any, kwargs map[string]any, spec *callSpec) (*Stream, error) {
	if c.isClosing() {
		return nil, ErrClosed
	}
	req, err := c.newRequest(ctx, service, fn, args, kwargs)
	if err != nil {
		return nil, err
	}
	spec.first = c.set.ReplyTimeout
	spec.reader = true
	req.spec = spec
	sctx, cancel := context.WithCancel(ctx)
	s := &Stream{
		c:      c,
		ctx:    sctx,
		items:  make(chan streamItem, c.set.StreamReplyMaxSize),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		cancel: cancel,
	}
	w := ReplyWriterFunc(func(ctx context.Context, r *Reply) error {
		switch r.Kind {
		case ReplySingle, ReplyStreamItem, ReplyHugeEnd:
			if r.Err != nil {
				return nil // reported by the handler's status
			}
			it := streamItem{v: r.Value, single: r.Kind != ReplyStreamItem}
			if r.Kind == ReplyStreamItem {
				if k, p := wire.ClassifyReply(r.Body); k == ReplyStreamItem {
					it.cl, it.n = spec.cur, int64(len(p))
				}
			}
			select {
			case s.items <- it:
				return nil
			case <-s.stop:
				return errStreamClosed
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	go func() {
		defer close(s.done)
		err := c.handler.ServeRPC(sctx, req, w)
		if err != nil {
			select {
			case <-s.stop:
				err = errStreamClosed
			default:
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("gate: %s.%s: %w", service, fn, err)
				}
			}
		}
		s.err = err
		close(s.items)
	}()
	return s, nil
}

var errStreamClosed = errors.New("gate: stream closed")

// Recv returns the next item. At the end of the stream it returns io.EOF;
// on failure the call's error (see [Client.Call] for the kinds), and the
// same again on later calls.
func (s *Stream) Recv() (any, error) {
	if s.last != nil {
		return nil, s.last
	}
	select {
	case <-s.stop:
		s.last = ErrClosed
		return nil, s.last
	default:
	}
	it, ok := <-s.items
	if ok {
		if it.cl != nil {
			s.c.consumed(s.ctx, it.cl, 1, it.n)
		}
		if !s.seen {
			s.seen, s.single = true, it.single
		}
		return it.v, nil
	}
	<-s.done
	switch {
	case s.err == nil:
		s.last = io.EOF
	case errors.Is(s.err, errStreamClosed):
		s.last = ErrClosed
	default:
		s.last = s.err
	}
	return nil, s.last
}

// All returns an iterator over the remaining items. It yields (item, nil)
// for each item and, if the stream fails, one final (nil, err). The stream
// is closed when the loop ends, including by break.
func (s *Stream) All() iter.Seq2[any, error] {
	return func(yield func(any, error) bool) {
		defer s.Close()
		for {
			v, err := s.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}

// Items returns an iterator over the remaining items that yields only
// items: when the stream fails, the loop ends and [Stream.Err] reports
// why. The stream is closed when the loop ends, including by break.
func (s *Stream) Items() iter.Seq[any] {
	return func(yield func(any) bool) {
		defer s.Close()
		for {
			v, err := s.Recv()
			if err != nil || !yield(v) {
				return
			}
		}
	}
}

// Err returns the error that ended the stream: nil while it runs, after a
// clean end and after a loop over Items stopped by break; ErrClosed when
// Recv found the stream closed; the failure otherwise (a remote exception,
// a timeout, a lost broker).
func (s *Stream) Err() error {
	if s.last == nil || s.last == io.EOF {
		return nil
	}
	return s.last
}

// Single reports whether the method answered with one value (an ordinary
// or a HugeData reply, which the stream yields as its only item) rather
// than a stream of items. It is known once Recv has returned the first
// item, and false before.
func (s *Stream) Single() bool { return s.single }

// Close stops the stream: if it has not ended, the request is dropped
// and Gate.cancel is sent to the broker. It waits for the stream's
// goroutine, is idempotent and returns nil.
func (s *Stream) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.cancel()
	})
	<-s.done
	return nil
}

// TypedStream is a [Stream] whose items are decoded into T. Get one with
// [StreamAs].
type TypedStream[T any] struct{ s *Stream }

// StreamAs calls a streaming method like [Client.Stream] (or
// [ServiceClient.Stream] when on is a service handle) and decodes each
// item into a T.
func StreamAs[T any](ctx context.Context, on Caller, method string, args ...any) (*TypedStream[T], error) {
	args, kw := splitKW(args)
	c, svc, fn := on.target(method) // typed.go
	spec := typedSpec[T](c)
	spec.item = spec.value
	s, err := c.openStream(ctx, svc, fn, args, kw, spec)
	if err != nil {
		return nil, err
	}
	return &TypedStream[T]{s: s}, nil
}

// Recv returns the next item; see [Stream.Recv].
func (t *TypedStream[T]) Recv() (T, error) {
	v, err := t.s.Recv()
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// All iterates over the items; see [Stream.All].
func (t *TypedStream[T]) All() iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for v, err := range t.s.All() {
			var tv T
			if err == nil {
				tv = v.(T)
			}
			if !yield(tv, err) {
				return
			}
		}
	}
}

// Items iterates over the items only; see [Stream.Items] and [TypedStream.Err].
func (t *TypedStream[T]) Items() iter.Seq[T] {
	return func(yield func(T) bool) {
		for v := range t.s.Items() {
			if !yield(v.(T)) {
				return
			}
		}
	}
}

// Err returns the error that ended the stream; see [Stream.Err].
func (t *TypedStream[T]) Err() error { return t.s.Err() }

// Single reports whether the method answered with one value; see
// [Stream.Single].
func (t *TypedStream[T]) Single() bool { return t.s.Single() }

// Close stops the stream; see [Stream.Close].
func (t *TypedStream[T]) Close() error { return t.s.Close() }
