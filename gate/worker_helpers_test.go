package gate

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

const (
	workerTestTimeout = 10 * time.Second
	workerRecvTimeout = 5 * time.Second
	testHB            = 100 * time.Millisecond
)

// fakeBackend is a test ROUTER standing in for a broker backend. It belongs
// to the test goroutine.
type fakeBackend struct {
	t        testing.TB
	zctx     *zmq.Context
	sock     *zmq.Socket
	endpoint string
	wid      []byte // routing id of the last READY
	mute     bool   // answer no heartbeats: the worker sees a silent broker
}

func newFakeBackend(t testing.TB) *fakeBackend {
	t.Helper()
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		zctx.SetRetryAfterEINTR(false)
		_ = zctx.Term()
	})
	sock, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	_ = sock.SetLinger(0)
	ep := zmqx.UniqueInproc("rawbroker")
	if err := sock.Bind(ep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return &fakeBackend{t: t, zctx: zctx, sock: sock, endpoint: ep}
}

// recv returns the next message (routing id first) or an error on timeout.
func (b *fakeBackend) recv(timeout time.Duration) ([][]byte, error) {
	p := zmq.NewPoller()
	p.Add(b.sock, zmq.POLLIN)
	polled, err := p.Poll(timeout)
	if err != nil {
		return nil, err
	}
	if len(polled) == 0 {
		return nil, errors.New("timeout")
	}
	return b.sock.RecvMessageBytes(0)
}

// next returns the next worker message other than a heartbeat, from any
// worker; it records the sender.
func (b *fakeBackend) next(timeout time.Duration) wire.WorkerMessage {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		frames, err := b.recv(time.Until(deadline))
		if err != nil {
			b.t.Fatalf("fakeBackend: no message within %v: %v", timeout, err)
		}
		m, err := wire.ParseWorkerMessage(frames[1:])
		if err != nil {
			b.t.Fatalf("fakeBackend: bad message %x: %v", frames, err)
		}
		if m.Command == wire.CmdHeartbeat {
			b.answerHeartbeat(frames[0])
			continue
		}
		if m.Command == wire.CmdReady {
			b.wid = frames[0]
		}
		return m
	}
}

// nextFrames returns the next non-heartbeat message's raw frames (DEALER
// view).
func (b *fakeBackend) nextFrames(timeout time.Duration) [][]byte {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		frames, err := b.recv(time.Until(deadline))
		if err != nil {
			b.t.Fatalf("fakeBackend: no message within %v: %v", timeout, err)
		}
		if len(frames) >= 4 && bytes.Equal(frames[3], []byte{byte(wire.CmdHeartbeat)}) {
			b.answerHeartbeat(frames[0])
			continue
		}
		return frames[1:]
	}
}

// answerHeartbeat answers a worker's heartbeat as a broker does, so that a
// test waiting on a slow reply (a 1 MiB bzip2 HugeData under -race on a
// loaded machine takes seconds) does not see the worker give the backend
// up for silence and re-register.
func (b *fakeBackend) answerHeartbeat(id []byte) {
	if b.mute {
		return
	}
	_, _ = b.sock.SendMessage(wire.WithRouting(id, wire.WorkerMessage{Command: wire.CmdHeartbeat}.Frames()))
}

func (b *fakeBackend) expectReady() wire.WorkerMessage {
	b.t.Helper()
	m := b.next(workerRecvTimeout)
	if m.Command != wire.CmdReady {
		b.t.Fatalf("first message %v, want READY", m.Command)
	}
	return m
}

func (b *fakeBackend) send(frames ...[]byte) {
	b.t.Helper()
	if _, err := b.sock.SendMessage(wire.WithRouting(b.wid, frames)); err != nil {
		b.t.Fatalf("fakeBackend send: %v", err)
	}
}

func (b *fakeBackend) request(client, rid []byte, body ...[]byte) {
	b.t.Helper()
	b.send(wire.WorkerMessage{Command: wire.CmdRequest, Client: client, RequestID: rid, Body: body}.Frames()...)
}

// call sends a request for fn(args..., **kwargs) and returns the first reply.
func (b *fakeBackend) call(rid string, fn string, args []any, kwargs map[string]any) wire.WorkerMessage {
	b.t.Helper()
	body, err := codec.EncodeRequestBody(fn, args, kwargs)
	if err != nil {
		b.t.Fatal(err)
	}
	b.request([]byte("client-1"), []byte(rid), body...)
	return b.reply(rid)
}

// reply waits for the next REPLY and checks its request id.
func (b *fakeBackend) reply(rid string) wire.WorkerMessage {
	b.t.Helper()
	m := b.next(workerRecvTimeout)
	if m.Command != wire.CmdReply {
		b.t.Fatalf("got %v, want REPLY", m.Command)
	}
	if string(m.RequestID) != rid {
		b.t.Fatalf("reply for request %q, want %q", m.RequestID, rid)
	}
	return m
}

// single decodes a single reply body.
func decodeSingle(t testing.TB, m wire.WorkerMessage) (any, *codec.Exception) {
	t.Helper()
	kind, payload := wire.ClassifyReply(m.Body)
	if kind != wire.ReplySingle {
		t.Fatalf("reply kind %v, want single", kind)
	}
	res, exc, err := codec.DecodeReply(payload)
	if err != nil {
		t.Fatalf("DecodeReply(%x): %v", payload, err)
	}
	v, err := codec.Decode(res)
	if err != nil {
		t.Fatal(err)
	}
	return v, exc
}

// startWorker runs a worker for svc against b; cleanup closes it and
// checks Serve's result.
func startWorker(t testing.TB, b *fakeBackend, svc *Service, opts ...WorkerOption) *Worker {
	t.Helper()
	all := append([]WorkerOption{WithZMQContext(b.zctx), WithHeartbeat(testHB), WithLiveness(50)}, opts...)
	w, err := NewWorker(b.endpoint, svc, all...)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Serve(context.Background()) }()
	t.Cleanup(func() {
		w.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Serve = %v, want ErrClosed", err)
			}
		case <-time.After(workerTestTimeout):
			t.Errorf("Serve did not return after Close")
		}
	})
	return w
}

func mustService(t testing.TB, name string) *Service {
	t.Helper()
	svc, err := NewService(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func workerTestCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), workerTestTimeout)
	t.Cleanup(cancel)
	return ctx
}
