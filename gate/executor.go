package gate

import (
	"context"
	"fmt"
)

// defaultPoolSize is the size of a worker's default goroutine pool (see
// [WithPoolSize]).
const defaultPoolSize = 128

// Executor decides where a method's code runs. The implementations are
// [Inline], [*Pool] (bounded goroutines, the default) and [*ProcessPool]
// (child processes). Choose one per method with [WithExecutor].
type Executor interface {
	execute(ctx context.Context, fn func(context.Context) error) error
}

type inlineExec struct{}

func (inlineExec) execute(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) }

// Inline runs the method directly on the request's goroutine, bounded
// only by the worker's capacity. Use it for quick, non-blocking methods.
var Inline Executor = inlineExec{}

// Pool bounds how many methods run at once: a request waits for a free
// slot (or for its ctx to end) before its method runs. Every worker has a
// default Pool of [WithPoolSize] slots; a Pool made with NewPool may be
// shared by methods and workers. A Pool holds no goroutines and needs no
// closing. Safe for concurrent use.
type Pool struct{ sem chan struct{} }

// NewPool returns a Pool running at most size methods at once. It
// returns an error wrapping [ErrInvalidOption] if size < 1.
func NewPool(size int) (*Pool, error) {
	if size < 1 {
		return nil, fmt.Errorf("gate: NewPool(%d): %w: size must be at least 1", size, ErrInvalidOption)
	}
	return &Pool{sem: make(chan struct{}, size)}, nil
}

// Size returns the pool's number of slots.
func (p *Pool) Size() int { return cap(p.sem) }

func (p *Pool) execute(ctx context.Context, fn func(context.Context) error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	return fn(ctx)
}

var (
	_ Executor = Inline
	_ Executor = (*Pool)(nil)
	_ Executor = (*ProcessPool)(nil)
)
