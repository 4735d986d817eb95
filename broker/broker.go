package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/zmqx"
)

// ErrServing is returned by Serve when the broker is already serving.
var ErrServing = errors.New("broker: already serving")

const (
	stateNew = iota
	stateServing
	stateClosed
)

// Broker is a gate-rpc (Majordomo) broker. Create it with New and run it
// with Serve. All methods are safe for concurrent use.
type Broker struct {
	opts options
	log  *slog.Logger
	id   []byte

	closeOnce sync.Once
	closing   chan struct{} // closed by signalClose
	ready     chan struct{} // closed once both sockets are bound
	done      chan struct{} // closed when Serve returns (if it ran)

	mu        sync.Mutex
	state     int
	mb        *zmqx.Queue[func()] // set by the loop while serving
	lp        *loop
	frontAddr string
	backAddr  string
	serveErr  error
	last      Stats // final snapshot after the loop exited
}

// New returns a Broker configured by opts. It creates no sockets; Serve
// does. Invalid options give an error wrapping gate.ErrInvalidOption.
func New(opts ...Option) (*Broker, error) {
	o := defaultOptions()
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.apply(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if o.frontend == o.backend && !ephemeral(o.frontend) {
		errs = append(errs, invalid("frontend and backend are both %q", o.frontend))
	}
	if err := o.sec.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.id == nil {
		o.id = defaultID()
	}
	b := &Broker{
		opts:    o,
		log:     o.logger,
		id:      o.id,
		closing: make(chan struct{}),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	return b, nil
}

// ephemeral reports whether endpoint asks the system for a port or path
// ("tcp://host:0", "tcp://host:*", "ipc://*"), so two equal strings still
// bind different endpoints.
func ephemeral(endpoint string) bool {
	return strings.HasSuffix(endpoint, ":0") || strings.HasSuffix(endpoint, ":*") || endpoint == "ipc://*"
}

// defaultID derives the broker id as gaterpc 0.2.12 does:
// uuid5(NAMESPACE_DNS, "gm-" + 16 random hex digits).
func defaultID() []byte {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return uuid5DNS("gm-" + hex.EncodeToString(r[:]))
}

// uuid5DNS returns the bytes of uuid5(NAMESPACE_DNS, name).
func uuid5DNS(name string) []byte {
	ns := []byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

// ID returns the broker id (16 bytes), as reported by Gate.info.
func (b *Broker) ID() []byte { return append([]byte(nil), b.id...) }

// Serve binds the frontend and backend and runs the broker until Close,
// Shutdown or the end of ctx. It blocks. It returns gate.ErrClosed after
// Shutdown or Close, ctx.Err() if ctx ended it, ErrServing if the broker
// is already serving, or the error that stopped it (such as a failed
// bind). A Broker serves at most once. When Serve created its own ZeroMQ
// context it terminates it before returning.
func (b *Broker) Serve(ctx context.Context) error {
	b.mu.Lock()
	switch b.state {
	case stateServing:
		b.mu.Unlock()
		return ErrServing
	case stateClosed:
		b.mu.Unlock()
		return gate.ErrClosed
	}
	b.state = stateServing
	b.mu.Unlock()
	defer close(b.done)

	stop := context.AfterFunc(ctx, b.signalClose)
	defer stop()

	err := b.run()
	if err == nil {
		err = gate.ErrClosed
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	b.mu.Lock()
	b.serveErr = err
	b.state = stateClosed
	b.mu.Unlock()
	return err
}

// signalClose fires the closing signal and wakes the loop.
func (b *Broker) signalClose() {
	b.closeOnce.Do(func() { close(b.closing) })
	b.mu.Lock()
	mb := b.mb
	b.mu.Unlock()
	if mb != nil {
		mb.Wake()
	}
}

// Close stops the broker at once: every queued or in-flight request gets
// a ServiceUnAvailableError reply, workers get DISCONNECT, and the sockets
// are closed. It waits for Serve to return. Close is idempotent and
// always returns nil. It must not be called from a Hook.
func (b *Broker) Close() error {
	b.signalClose()
	b.mu.Lock()
	st := b.state
	if st == stateNew {
		b.state = stateClosed
	}
	b.mu.Unlock()
	if st == stateServing {
		<-b.done
	}
	return nil
}

// Shutdown stops the broker gracefully: new requests for worker services
// are answered with ServiceUnAvailableError, queued requests are failed
// the same way, and requests in flight on workers may finish until ctx is
// done. Then it closes the broker as Close does. It returns ctx.Err() if
// ctx ended before the in-flight requests finished, else nil.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	mb, lp := b.mb, b.lp
	b.mu.Unlock()
	if mb == nil {
		return b.Close()
	}
	drained := make(chan struct{})
	if err := mb.PushWait(ctx, func() { lp.startDrain(drained) }); err != nil {
		_ = b.Close()
		if errors.Is(err, zmqx.ErrClosed) {
			return nil
		}
		return err
	}
	var err error
	select {
	case <-drained:
	case <-b.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = b.Close()
	return err
}

// Ready is closed once Serve has bound both sockets.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// Addrs waits until Serve has bound both sockets and returns the actual
// endpoints (for "tcp://host:0" the port chosen by the system). It
// returns the Serve error if Serve stopped first, or ctx.Err().
func (b *Broker) Addrs(ctx context.Context) (frontend, backend string, err error) {
	select {
	case <-b.ready:
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.frontAddr, b.backAddr, nil
	case <-b.done:
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.serveErr == nil {
			return "", "", gate.ErrClosed
		}
		return "", "", b.serveErr
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

// Stats returns a snapshot of the broker, taken on its loop. It is safe
// for concurrent use and returns within about a second even when the loop
// is busy; before Serve it returns an empty snapshot and after the broker
// closed the last snapshot taken when it stopped.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	mb, lp, st, last := b.mb, b.lp, b.state, b.last
	b.mu.Unlock()
	if st != stateServing || mb == nil {
		if last.Time.IsZero() {
			return emptyStats()
		}
		return last
	}
	ch := make(chan Stats, 1)
	if err := mb.Push(func() { ch <- lp.snapshot() }); err != nil {
		return b.lastOrEmpty()
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case s := <-ch:
		return s
	case <-b.done:
		return b.lastOrEmpty()
	case <-t.C:
		return b.lastOrEmpty()
	}
}

func (b *Broker) lastOrEmpty() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.Time.IsZero() {
		return emptyStats()
	}
	return b.last
}

func emptyStats() Stats {
	return Stats{
		Time:        time.Now(),
		Outcomes:    map[string]uint64{},
		Expirations: map[string]uint64{},
		Drops:       map[string]uint64{},
		// CURVE denials (security.go).
		AuthFailures: map[string]uint64{},
	}
}
