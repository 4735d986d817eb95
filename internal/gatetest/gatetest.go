// Package gatetest is the test harness for gate components: it starts an
// in-process broker on a chosen transport and provides raw DEALER peers
// that speak the wire protocol frame by frame.
//
//	func TestX(t *testing.T) {
//		for _, tr := range gatetest.Endpoints(t) {
//			t.Run(tr.Name, func(t *testing.T) {
//				h := gatetest.StartBrokerOn(t, tr)
//				w := h.RawWorker(t)
//				w.Ready("Echo", "echo service", 1)
//				c := h.RawClient(t)
//				c.Request("Echo", []byte("rid-1"), body...)
//				req := w.NextRequest(gatetest.RecvTimeout)
//				...
//			})
//		}
//	}
//
// Everything registers its teardown with t.Cleanup (peers close before the
// broker, the broker before the shared ZeroMQ context). Peers are owned by
// the goroutine that created them and are not safe for concurrent use;
// every receive has a timeout.
//
// Negative checks ("nothing came") order after the unwanted message
// instead of waiting a short while: RawClient.Sync is a keepalive round
// trip on the client's own connection, RawWorker.ExpectQuiet waits for
// broker heartbeats that follow anything sent before, and ExpectEmpty
// reads what is already there (complete on inproc). The package also
// holds the helpers the tests share: ServeWorker, NewZMQContext, Buffer,
// WaitLogRecord, FreePort, MustGet, and the msgpack builders
// Pack, CallBody and ResultBody.
package gatetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// Timeouts used by the harness.
const (
	// TestTimeout bounds whole test steps (start, shutdown).
	TestTimeout = 10 * time.Second
	// RecvTimeout is a generous wait for a message that should come.
	RecvTimeout = 5 * time.Second
	// Heartbeat is the broker heartbeat StartBroker configures.
	Heartbeat = 100 * time.Millisecond
)

// Transport names a kind of endpoint and makes fresh endpoint pairs.
type Transport struct {
	Name string
	// Endpoints returns a fresh frontend and backend endpoint to bind.
	Endpoints func(t testing.TB) (frontend, backend string)
}

// Inproc binds inproc:// endpoints (peers must share the harness context).
var Inproc = Transport{Name: "inproc", Endpoints: func(testing.TB) (string, string) {
	return zmqx.UniqueInproc("gt-front"), zmqx.UniqueInproc("gt-back")
}}

// IPC binds ipc:// endpoints in a short temporary directory (unix socket
// paths are limited to about 100 bytes), removed at cleanup.
var IPC = Transport{Name: "ipc", Endpoints: func(t testing.TB) (string, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "g")
	if err != nil {
		t.Fatalf("gatetest: temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return "ipc://" + dir + "/f", "ipc://" + dir + "/b"
}}

// TCP binds tcp://127.0.0.1 on ports chosen by the system: libzmq binds
// each "tcp://127.0.0.1:*" to a different free ephemeral port, read back
// with the broker's Addrs (Harness.Frontend and Harness.Backend).
var TCP = Transport{Name: "tcp", Endpoints: func(testing.TB) (string, string) {
	return "tcp://127.0.0.1:*", "tcp://127.0.0.1:*"
}}

// Endpoints returns the transport matrix: inproc, ipc and tcp.
func Endpoints(t testing.TB) []Transport { return []Transport{Inproc, IPC, TCP} }

// Harness is a running broker with a shared ZeroMQ context.
type Harness struct {
	Broker    *broker.Broker
	Ctx       *zmq.Context
	Transport string
	Frontend  string // actual bound endpoint
	Backend   string // actual bound endpoint
	serveErr  chan error
}

// StartBroker starts a broker on inproc endpoints with the test heartbeat
// (Heartbeat) and a silent logger; opts are applied after those defaults.
func StartBroker(t testing.TB, opts ...broker.Option) *Harness {
	t.Helper()
	return StartBrokerOn(t, Inproc, opts...)
}

// StartBrokerOn starts a broker on the given transport. It fails t if the
// broker does not bind within TestTimeout. At cleanup it closes the broker,
// checks that Serve returned gate.ErrClosed, and terminates the context.
func StartBrokerOn(t testing.TB, tr Transport, opts ...broker.Option) *Harness {
	t.Helper()
	zctx := NewZMQContext(t)
	front, back := tr.Endpoints(t)
	all := append([]broker.Option{
		broker.WithZMQContext(zctx),
		broker.WithFrontend(front),
		broker.WithBackend(back),
		broker.WithHeartbeat(Heartbeat),
		broker.WithLogger(TestLogger(t)),
	}, opts...)
	b, err := broker.New(all...)
	if err != nil {
		t.Fatalf("gatetest: broker.New: %v", err)
	}
	h := &Harness{Broker: b, Ctx: zctx, Transport: tr.Name, serveErr: make(chan error, 1)}
	go func() { h.serveErr <- b.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = b.Close()
		timer := time.NewTimer(TestTimeout)
		defer timer.Stop()
		select {
		case err := <-h.serveErr:
			if !errors.Is(err, gate.ErrClosed) {
				t.Errorf("gatetest: Serve = %v, want gate.ErrClosed", err)
			}
		case <-timer.C:
			t.Errorf("gatetest: Serve did not return after Close")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), TestTimeout)
	defer cancel()
	h.Frontend, h.Backend, err = b.Addrs(ctx)
	if err != nil {
		t.Fatalf("gatetest: broker did not start: %v", err)
	}
	return h
}

// TestLogger returns a logger for brokers under test: silent unless the
// environment variable GATE_TEST_LOG is set, then text to stderr.
func TestLogger(t testing.TB) *slog.Logger {
	if os.Getenv("GATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// ServeErr returns the channel that receives Serve's result.
func (h *Harness) ServeErr() <-chan error { return h.serveErr }

var peerSeq atomic.Uint64

// NewID returns a unique routing id with the given prefix.
func NewID(prefix string) []byte {
	return []byte(fmt.Sprintf("%s-%06d-%d", prefix, peerSeq.Add(1), os.Getpid()))
}

// RawPeer is a DEALER socket owned by the test goroutine.
type RawPeer struct {
	t      testing.TB
	ID     []byte
	sock   *zmq.Socket
	poller *zmq.Poller
}

// Dial connects a DEALER with routing id id to endpoint in zctx; it is
// closed at cleanup.
func Dial(t testing.TB, zctx *zmq.Context, endpoint string, id []byte) *RawPeer {
	t.Helper()
	return DialHWM(t, zctx, endpoint, id, 0)
}

// DialHWM is Dial with the socket's send and receive high-water marks set
// to hwm messages (0: the libzmq default, 1000), for tests of slow peers.
func DialHWM(t testing.TB, zctx *zmq.Context, endpoint string, id []byte, hwm int) *RawPeer {
	t.Helper()
	s, err := zctx.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatalf("gatetest: socket: %v", err)
	}
	if err := zmqx.Setup(s, hwm, 0, id); err != nil {
		s.Close()
		t.Fatalf("gatetest: socket setup: %v", err)
	}
	if err := s.SetSndtimeo(RecvTimeout); err != nil { // a send never hangs a test
		s.Close()
		t.Fatalf("gatetest: socket setup: %v", err)
	}
	if err := s.Connect(endpoint); err != nil {
		s.Close()
		t.Fatalf("gatetest: connect %s: %v", endpoint, err)
	}
	p := &RawPeer{t: t, ID: id, sock: s, poller: zmq.NewPoller()}
	p.poller.Add(s, zmq.POLLIN)
	t.Cleanup(p.Close)
	return p
}

// Close closes the socket (idempotent).
func (p *RawPeer) Close() {
	if p.sock != nil {
		p.sock.Close()
		p.sock = nil
	}
}

// Socket returns the underlying socket, for tests that need options.
func (p *RawPeer) Socket() *zmq.Socket { return p.sock }

// Send sends one multipart message, failing the test on error.
func (p *RawPeer) Send(frames ...[]byte) {
	p.t.Helper()
	if len(frames) == 0 {
		p.t.Fatalf("gatetest: Send with no frames")
	}
	last := len(frames) - 1
	for i, f := range frames {
		flag := zmq.Flag(0)
		if i < last {
			flag = zmq.SNDMORE
		}
		if _, err := p.sock.SendBytes(f, flag); err != nil {
			p.t.Fatalf("gatetest: send: %v", err)
		}
	}
}

// ErrTimeout is returned by Recv when nothing arrived in time.
var ErrTimeout = errors.New("gatetest: receive timed out")

// Recv waits up to timeout for one message.
func (p *RawPeer) Recv(timeout time.Duration) ([][]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		msg, err := p.sock.RecvMessageBytes(zmq.DONTWAIT)
		if err == nil {
			return msg, nil
		}
		if zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) && zmq.AsErrno(err) != zmq.Errno(syscall.EINTR) {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, ErrTimeout
		}
		if _, err := p.poller.Poll(left); err != nil && zmq.AsErrno(err) != zmq.Errno(syscall.EINTR) {
			return nil, err
		}
	}
}

// MustRecv is Recv that fails the test on error.
func (p *RawPeer) MustRecv(timeout time.Duration) [][]byte {
	p.t.Helper()
	msg, err := p.Recv(timeout)
	if err != nil {
		p.t.Fatalf("gatetest: %s: %v", p.ID, err)
	}
	return msg
}

// Dump renders frames for failure messages.
func Dump(frames [][]byte) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		if isPrintable(f) {
			parts[i] = fmt.Sprintf("%q", f)
		} else {
			parts[i] = fmt.Sprintf("%x", f)
		}
	}
	return "[" + strings.Join(parts, " | ") + "]"
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// RawWorker is a hand-driven worker DEALER.
type RawWorker struct {
	*RawPeer
	// AutoHeartbeat makes NextMessage answer broker HEARTBEATs itself
	// (default true), as a Python worker does.
	AutoHeartbeat bool
	// Heartbeats counts broker HEARTBEATs seen by NextMessage.
	Heartbeats int
}

// RawWorker connects a raw worker to the broker's backend.
func (h *Harness) RawWorker(t testing.TB) *RawWorker {
	t.Helper()
	return &RawWorker{RawPeer: Dial(t, h.Ctx, h.Backend, NewID("w")), AutoHeartbeat: true}
}

// Ready sends READY service:description:capacity.
func (w *RawWorker) Ready(service, description string, capacity int) {
	w.t.Helper()
	w.Send(wire.WorkerMessage{Command: wire.CmdReady, Service: service, Description: description, Capacity: capacity}.Frames()...)
}

// Reply sends a REPLY with the given body.
func (w *RawWorker) Reply(client, rid []byte, body ...[]byte) {
	w.t.Helper()
	w.Send(wire.WorkerMessage{Command: wire.CmdReply, Client: client, RequestID: rid, Body: body}.Frames()...)
}

// Heartbeat sends a HEARTBEAT with optional extra frames.
func (w *RawWorker) Heartbeat(extra ...[]byte) {
	w.t.Helper()
	w.Send(wire.WorkerMessage{Command: wire.CmdHeartbeat, Extra: extra}.Frames()...)
}

// Disconnect sends a DISCONNECT with optional extra frames.
func (w *RawWorker) Disconnect(extra ...[]byte) {
	w.t.Helper()
	w.Send(wire.WorkerMessage{Command: wire.CmdDisconnect, Extra: extra}.Frames()...)
}

// NextMessage returns the next broker message other than HEARTBEAT
// (answering HEARTBEATs when AutoHeartbeat is set).
func (w *RawWorker) NextMessage(timeout time.Duration) (wire.WorkerMessage, error) {
	deadline := time.Now().Add(timeout)
	for {
		frames, err := w.Recv(time.Until(deadline))
		if err != nil {
			return wire.WorkerMessage{}, err
		}
		m, err := wire.ParseWorkerMessage(frames)
		if err != nil {
			return wire.WorkerMessage{}, fmt.Errorf("gatetest: bad message from broker %s: %w", Dump(frames), err)
		}
		if m.Command == wire.CmdHeartbeat {
			w.Heartbeats++
			if w.AutoHeartbeat {
				w.Heartbeat()
			}
			continue
		}
		return m, nil
	}
}

// ExpectQuiet checks that the broker sends the worker nothing but
// HEARTBEATs: it first reads what is already waiting, then waits for n
// more HEARTBEATs, failing the test on any other message. Call it once a
// barrier (RawClient.Sync, or a Stats condition) shows the broker has
// handled the message whose effect must not reach the worker: whatever
// the broker sent the worker before then is in the worker's pipe ahead
// of those heartbeats (the broker heartbeats a worker only after an
// interval in which it sent it nothing), so the check orders after the
// unwanted message instead of racing a timer. n = 2 covers a heartbeat
// that was already on its way. The worker must be registered and answer
// heartbeats (AutoHeartbeat).
func (w *RawWorker) ExpectQuiet(n int) {
	w.t.Helper()
	w.ExpectEmpty()
	for range n {
		frames, err := w.Recv(RecvTimeout)
		if err != nil {
			w.t.Fatalf("gatetest: worker %s: waiting for heartbeats: %v", w.ID, err)
		}
		m, err := wire.ParseWorkerMessage(frames)
		if err != nil || m.Command != wire.CmdHeartbeat {
			w.t.Fatalf("gatetest: worker %s: unexpected %s", w.ID, Dump(frames))
		}
		w.Heartbeats++
		if w.AutoHeartbeat {
			w.Heartbeat()
		}
	}
}

// ExpectEmpty fails the test if a message other than a worker HEARTBEAT
// is waiting to be read now. On inproc a broker's send is in the peer's
// pipe when it returns, so after a barrier it is a complete check there;
// on tcp and ipc it sees only what has arrived.
func (p *RawPeer) ExpectEmpty() {
	p.t.Helper()
	for {
		msg, err := p.sock.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return
		}
		if m, err := wire.ParseWorkerMessage(msg); err == nil && m.Command == wire.CmdHeartbeat {
			continue
		}
		p.t.Fatalf("gatetest: %s: unexpected message %s", p.ID, Dump(msg))
	}
}

// NextRequest returns the next REQUEST, failing the test on anything else.
func (w *RawWorker) NextRequest(timeout time.Duration) wire.WorkerMessage {
	w.t.Helper()
	m, err := w.NextMessage(timeout)
	if err != nil {
		w.t.Fatalf("gatetest: worker %s: %v", w.ID, err)
	}
	if m.Command != wire.CmdRequest {
		w.t.Fatalf("gatetest: worker %s got %v, want REQUEST", w.ID, m.Command)
	}
	return m
}

// RawClient is a hand-driven client DEALER.
type RawClient struct{ *RawPeer }

// RawClient connects a raw client to the broker's frontend.
func (h *Harness) RawClient(t testing.TB) *RawClient {
	t.Helper()
	return &RawClient{Dial(t, h.Ctx, h.Frontend, NewID("c"))}
}

// Request sends ” | MDPC01 | service | rid | body...
func (c *RawClient) Request(service string, rid []byte, body ...[]byte) {
	c.t.Helper()
	c.Send(wire.ClientRequest{Service: service, RequestID: rid, Body: body}.Frames()...)
}

// NextReply returns the next reply, failing the test on timeout or a
// malformed message.
func (c *RawClient) NextReply(timeout time.Duration) wire.ClientReply {
	c.t.Helper()
	frames := c.MustRecv(timeout)
	r, err := wire.ParseClientReply(frames)
	if err != nil {
		c.t.Fatalf("gatetest: client %s: bad reply %s: %v", c.ID, Dump(frames), err)
	}
	return r
}

var syncSeq atomic.Uint64

// Sync is a round trip through the broker on this client's connection: it
// sends Gate.keepalive and reads until the answer comes, failing the test
// on any other message first. The broker answers one connection in order,
// so every reply to what this client sent before Sync arrives before the
// keepalive's answer: "no answer to X" becomes "nothing came before the
// answer to a later request", a check that cannot pass by being slow.
func (c *RawClient) Sync() {
	c.t.Helper()
	rid := []byte(fmt.Sprintf("gatetest-sync-%d", syncSeq.Add(1)))
	c.Request(wire.InternalService, rid, codec.AppendStr(nil, "keepalive"), codec.AppendBin([]byte{0x91}, []byte("heartbeat")))
	rep := c.NextReply(RecvTimeout)
	if !bytes.Equal(rep.RequestID, rid) {
		c.t.Fatalf("gatetest: client %s: unexpected reply for %q before the sync answer", c.ID, rep.RequestID)
	}
}

// WaitFor polls cond every few milliseconds until it holds or timeout
// passes, then fails the test with msg.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gatetest: timed out waiting for %s", msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
