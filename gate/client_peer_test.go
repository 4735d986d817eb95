package gate

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

const clientTestTimeout = 10 * time.Second

// rawBroker is a ROUTER test peer bound on inproc, driven frame by frame
// with internal/wire. One goroutine owns the socket; tests read what
// arrived from in and queue replies with send.
type rawBroker struct {
	zctx     *zmq.Context
	endpoint string
	in       chan [][]byte // received, routing id first
	out      chan [][]byte // to send, routing id first
	mute     chan bool     // true: stop answering keepalives
	stop     chan struct{}
	done     chan struct{}

	autoAlive bool
}

// startRawBroker binds a ROUTER in a fresh zmq context. When autoAlive is
// set, it answers the client loop's own Gate.keepalive and
// Gate.get_services (plain request ids; calls made by tests have extended
// ids) and does not report them on in.
func startRawBroker(t testing.TB, autoAlive bool) *rawBroker {
	t.Helper()
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBroker{
		zctx:      zctx,
		endpoint:  zmqx.UniqueInproc("rawbroker"),
		in:        make(chan [][]byte, 4096),
		out:       make(chan [][]byte, 4096),
		mute:      make(chan bool, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		autoAlive: autoAlive,
	}
	ready := make(chan error, 1)
	go rb.run(ready)
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(rb.stop)
		<-rb.done
		_ = zctx.Term()
	})
	return rb
}

func (rb *rawBroker) run(ready chan<- error) {
	defer close(rb.done)
	s, err := rb.zctx.NewSocket(zmq.ROUTER)
	if err == nil {
		err = s.SetLinger(0)
	}
	if err == nil {
		err = s.SetSndhwm(0) // a producer without a window must not lose replies here
	}
	if err == nil {
		err = s.Bind(rb.endpoint)
	}
	ready <- err
	if err != nil {
		return
	}
	defer s.Close()
	muted := false
	poller := zmq.NewPoller()
	poller.Add(s, zmq.POLLIN)
	for {
		select {
		case <-rb.stop:
			return
		case muted = <-rb.mute:
		default:
		}
	out:
		for {
			select {
			case m := <-rb.out:
				_, _ = s.SendMessageDontwait(m)
			default:
				break out
			}
		}
		polled, err := poller.Poll(2 * time.Millisecond)
		if err != nil {
			return
		}
		if len(polled) == 0 {
			continue
		}
		for range 256 {
			m, err := s.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			if rb.autoAlive && isInternal(m) && !wire.IsExtended(m[4]) {
				if muted {
					continue
				}
				req, _ := wire.ParseClientRequest(m[1:])
				fn := string(req.Body[0][1:])
				var reply []byte
				switch fn {
				case "keepalive":
					reply, _ = codec.EncodeResult([]byte("200"))
				case "get_services":
					reply, _ = codec.EncodeResult([]string{"GateRPC", "Gate"})
				default: // cancel: report it
					select {
					case rb.in <- m:
					case <-rb.stop:
						return
					}
					continue
				}
				_, _ = s.SendMessageDontwait(wire.WithRouting(m[0], wire.ClientReply{Service: "Gate", RequestID: req.RequestID, Body: [][]byte{reply}}.Frames()))
				continue
			}
			select {
			case rb.in <- m:
			case <-rb.stop:
				return
			}
		}
	}
}

func isInternal(m [][]byte) bool { return len(m) > 3 && string(m[3]) == "Gate" }

// recv returns the next message that is not an internal Gate request
// (unless wantInternal).
func (rb *rawBroker) recv(t testing.TB, ctx context.Context) (routing []byte, req wire.ClientRequest) {
	t.Helper()
	select {
	case m := <-rb.in:
		r, err := wire.ParseClientRequest(m[1:])
		if err != nil {
			t.Fatalf("client sent a malformed request %x: %v", m, err)
		}
		return m[0], r
	case <-ctx.Done():
		t.Fatalf("no request from the client: %v", ctx.Err())
	}
	return nil, wire.ClientRequest{}
}

// recvFn waits for a request calling fn, skipping others.
func (rb *rawBroker) recvFn(t testing.TB, ctx context.Context, fn string) (routing []byte, req wire.ClientRequest) {
	t.Helper()
	want, _ := codec.Marshal(fn)
	for {
		routing, req = rb.recv(t, ctx)
		if len(req.Body) > 0 && bytes.Equal(req.Body[0], want) {
			return routing, req
		}
	}
}

// reply sends body frames as the reply to req.
func (rb *rawBroker) reply(routing []byte, req wire.ClientRequest, body ...[]byte) {
	rb.out <- wire.WithRouting(routing, wire.ClientReply{Service: req.Service, RequestID: req.RequestID, Body: body}.Frames())
}

// testClient connects a client to rb with short test timings.
func testClient(t testing.TB, endpoint string, zctx *zmq.Context, opts ...ClientOption) *Client {
	t.Helper()
	set := DefaultSettings()
	set.Heartbeat = 250 * time.Millisecond // loss after 750 ms: lenient under -race on 2 cores
	set.ReplyTimeout = 5 * time.Second
	set.ReconnectBackoff = 20 * time.Millisecond
	set.ReconnectBackoffMax = 100 * time.Millisecond
	all := append([]ClientOption{WithSettings(set), WithZMQContext(zctx), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	c, err := NewClient(endpoint, all...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), clientTestTimeout)
	t.Cleanup(cancel)
	return ctx
}
