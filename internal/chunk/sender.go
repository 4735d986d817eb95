package chunk

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Sender compresses a payload written to it and emits the compressed stream as
// chunks of exactly the configured chunk size, the last one shorter, followed
// by an empty chunk unless [WithEmptyChunk](false) is set. Memory is bounded
// by one chunk plus the compressor's state, so a huge value can be encoded
// straight into it:
//
//	s, err := chunk.NewSender(send)
//	if err != nil { ... }
//	if err := msgpack.NewEncoder(s).Encode(v); err != nil {
//		s.Abort()
//		...
//	}
//	err = s.Close()
//
// The emit callback is called synchronously from Write and Close, unless
// [WithPipeline] is set: then it runs on a goroutine of the Sender's own
// while Write goes on compressing, at most the given number of chunks
// ahead, and a Sender must end with Close or Abort, which wait for that
// goroutine. Either way emit is called by one goroutine at a time, in
// chunk order. It owns each chunk it receives: the Sender never touches
// the slice again, so the callback may queue it. An error from emit stops
// the Sender and is returned from the current (or, pipelined, a later)
// and every later call.
//
// A Sender is not safe for concurrent use.
type Sender struct {
	emit       func(chunk []byte) error
	size       int
	emptyChunk bool
	zw         io.WriteCloser
	buf        []byte // the chunk being filled; len < size
	sent       int64
	err        error
	closed     bool
	pipe       *pipe // nil: emit runs on the caller's goroutine
}

// pipe is a pipelined Sender's hand-off to its emitting goroutine.
type pipe struct {
	ch      chan []byte   // chunks to emit, bounded: the producer waits for room
	failed  chan struct{} // closed when emit failed
	done    chan struct{} // closed when the goroutine has exited
	aborted atomic.Bool   // discard what is still queued
	once    sync.Once
	err     error // emit's error, set before failed is closed
}

func (p *pipe) run(emit func([]byte) error) {
	defer close(p.done)
	for c := range p.ch {
		if p.aborted.Load() {
			continue
		}
		if err := emit(c); err != nil {
			p.once.Do(func() {
				p.err = err
				close(p.failed)
			})
			p.aborted.Store(true) // drain the rest so the producer never waits
		}
	}
}

// put queues c for the emitting goroutine; it returns emit's error once
// emit has failed.
func (p *pipe) put(c []byte) error {
	select {
	case <-p.failed:
		return p.err
	default:
	}
	select {
	case p.ch <- c:
		return nil
	case <-p.failed:
		return p.err
	}
}

// stop lets the emitting goroutine finish and waits for it; it returns
// emit's error, if any.
func (p *pipe) stop() error {
	close(p.ch)
	<-p.done
	select {
	case <-p.failed:
		return p.err
	default:
		return nil
	}
}

var _ io.WriteCloser = (*Sender)(nil)

// NewSender returns a Sender that passes chunks to emit. It honours
// [WithCompression], [WithCompressor], [WithLevel], [WithChunkSize] and
// [WithEmptyChunk]; it fails with [ErrInvalidOption] or
// [ErrUnknownCompressor] on bad options.
func NewSender(emit func(chunk []byte) error, opts ...Option) (*Sender, error) {
	if emit == nil {
		return nil, fmt.Errorf("%w: nil emit func", ErrInvalidOption)
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	s := &Sender{emit: emit, size: o.chunkSize, emptyChunk: o.emptyChunk}
	zw, err := o.comp.NewWriter((*chunkWriter)(s), o.level)
	if err != nil {
		return nil, err
	}
	s.zw = zw
	if o.pipeline > 0 {
		s.pipe = &pipe{ch: make(chan []byte, o.pipeline), failed: make(chan struct{}), done: make(chan struct{})}
		go s.pipe.run(emit)
	}
	return s, nil
}

// Write compresses p, emitting every chunk that fills up.
func (s *Sender) Write(p []byte) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.zw.Write(p)
	if s.err != nil {
		return n, s.err
	}
	if err != nil {
		s.err = fmt.Errorf("chunk: compress: %w", err)
		return n, s.err
	}
	return n, nil
}

// Close finishes the compressed stream and emits the remaining data, then the
// empty chunk if enabled. It returns the first error from compression or
// emit. A second Close returns [ErrClosed].
func (s *Sender) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	cerr := s.zw.Close()
	if s.err == nil && cerr != nil {
		s.err = fmt.Errorf("chunk: compress: %w", cerr)
	}
	if s.err == nil && len(s.buf) > 0 {
		s.flush()
	}
	if s.err == nil && s.emptyChunk {
		s.send([]byte{})
	}
	if s.pipe != nil {
		if s.err != nil {
			s.pipe.aborted.Store(true)
		}
		if perr := s.pipe.stop(); s.err == nil {
			s.err = perr
		}
	}
	return s.err
}

// Abort releases the compressor without emitting anything more, for a sender
// whose payload could not be produced. It is safe to call after Close.
func (s *Sender) Abort() {
	if s.closed {
		return
	}
	s.closed = true
	if s.err == nil {
		s.err = ErrClosed // stop the chunkWriter while the compressor closes
	}
	_ = s.zw.Close()
	if s.pipe != nil {
		s.pipe.aborted.Store(true)
		_ = s.pipe.stop()
	}
}

// Sent returns the number of compressed bytes emitted so far.
func (s *Sender) Sent() int64 { return s.sent }

func (s *Sender) flush() {
	c := s.buf
	s.buf = nil
	s.sent += int64(len(c))
	s.send(c)
}

// send hands c to emit, directly or through the pipe.
func (s *Sender) send(c []byte) {
	var err error
	if s.pipe != nil {
		err = s.pipe.put(c)
	} else {
		err = s.emit(c)
	}
	if err != nil {
		s.err = err
	}
}

// chunkWriter is the compressor's destination: it cuts the compressed stream
// into chunks.
type chunkWriter Sender

func (cw *chunkWriter) Write(p []byte) (int, error) {
	s := (*Sender)(cw)
	n := 0
	for len(p) > 0 {
		if s.err != nil {
			return n, s.err
		}
		if s.buf == nil {
			s.buf = make([]byte, 0, s.size)
		}
		k := min(s.size-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		n += k
		if len(s.buf) == s.size {
			s.flush()
		}
	}
	return n, s.err
}

// Split compresses value and returns its chunks, including the trailing
// empty chunk unless disabled. It takes the same options as [NewSender].
func Split(value []byte, opts ...Option) ([][]byte, error) {
	var chunks [][]byte
	s, err := NewSender(func(c []byte) error {
		chunks = append(chunks, c)
		return nil
	}, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(value); err != nil {
		s.Abort()
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return chunks, nil
}
