package gate_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// TestWorkerWaitRegisteredNeedsTheBroker runs a worker against a fake
// broker (a ROUTER the test owns): READY alone does not register the
// worker; a heartbeat from the broker does; silence for Heartbeat ×
// Liveness unregisters it again.
func TestWorkerWaitRegisteredNeedsTheBroker(t *testing.T) {
	zctx := gatetest.NewZMQContext(t)
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = router.SetLinger(0); router.Close() }()
	if err := router.Bind("inproc://fake-broker-wait"); err != nil {
		t.Fatal(err)
	}
	svc, err := gate.NewService("Wait", "")
	if err != nil {
		t.Fatal(err)
	}
	// The worker gives up on a silent broker after hb × 20 = 2 s: long
	// enough for the steps below on a loaded machine.
	const hb = 100 * time.Millisecond
	w, err := svc.NewWorker("inproc://fake-broker-wait", gate.WithZMQContext(zctx), gate.WithHeartbeat(hb),
		gate.WithLiveness(20), gate.WithLogger(clQuiet()))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Serve(context.Background()) }()
	defer func() {
		w.Close()
		<-errc
	}()

	// READY arrives, the broker says nothing.
	_ = router.SetRcvtimeo(gatetest.TestTimeout)
	msg, err := router.RecvMessageBytes(0)
	if err != nil {
		t.Fatalf("fake broker: no READY: %v", err)
	}
	id := msg[0]
	if m, err := wire.ParseWorkerMessage(msg[1:]); err != nil || m.Command != wire.CmdReady {
		t.Fatalf("first message = %v (%v), want READY", m.Command, err)
	}
	if w.Connected() {
		t.Fatal("Connected after READY alone, before the broker spoke")
	}
	short, cancel := context.WithTimeout(context.Background(), 2*hb)
	err = w.WaitRegistered(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRegistered with a silent broker = %v, want DeadlineExceeded", err)
	}

	// The broker answers with a heartbeat: registered. If the worker has
	// reconnected meanwhile (a very slow machine), answer its latest READY.
	for {
		msg, err := router.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			break
		}
		if m, err := wire.ParseWorkerMessage(msg[1:]); err == nil && m.Command == wire.CmdReady {
			id = msg[0]
		}
	}
	if _, err := router.SendMessage(id, wire.WorkerMessage{Command: wire.CmdHeartbeat}.Frames()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatetest.TestTimeout)
	defer cancel()
	if err := w.WaitRegistered(ctx); err != nil {
		t.Fatalf("WaitRegistered after a heartbeat = %v", err)
	}
	if !w.Connected() {
		t.Fatal("not Connected after WaitRegistered")
	}

	// The broker goes silent (dead): after Heartbeat × Liveness the
	// worker drops the connection and is no longer Connected.
	gatetest.WaitFor(t, gatetest.TestTimeout, "Connected to turn false with a dead broker", func() bool { return !w.Connected() })

	w.Close()
	if err := w.WaitRegistered(ctx); !errors.Is(err, gate.ErrClosed) {
		t.Fatalf("WaitRegistered after Close = %v, want ErrClosed", err)
	}
}

// TestWorkerWaitRegisteredRealBroker: with a gate broker, WaitRegistered
// returns once the broker registered the worker, and a call then finds it.
func TestWorkerWaitRegisteredRealBroker(t *testing.T) {
	h := clBroker(t, gatetest.Inproc)
	w := clStartWorker(t, h, clService(t))
	ctx := clCtx(t)
	if err := w.WaitRegistered(ctx); err != nil {
		t.Fatalf("WaitRegistered = %v", err)
	}
	c := clNewClient(t, h)
	if v, err := c.Call(ctx, "E2E.echo", "x"); err != nil || v != "x" {
		t.Fatalf("Call after WaitRegistered = %v, %v", v, err)
	}
	// Closing the broker sends DISCONNECT: the worker is no longer
	// registered.
	_ = h.Broker.Close()
	gatetest.WaitFor(t, gatetest.TestTimeout, "Connected to turn false after the broker closed", func() bool { return !w.Connected() })
}

// TestClientWaitService: WaitService returns only once a worker of the
// service is registered.
func TestClientWaitService(t *testing.T) {
	h := clBroker(t, gatetest.Inproc)
	c := clNewClient(t, h)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := c.WaitService(short, "E2E")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitService without a worker = %v, want DeadlineExceeded", err)
	}
	if err := c.WaitService(clCtx(t), ""); !errors.Is(err, gate.ErrInvalidOption) {
		t.Fatalf("WaitService(\"\") = %v, want ErrInvalidOption", err)
	}
	clStartWorker(t, h, clService(t))
	ctx := clCtx(t)
	if err := c.WaitService(ctx, "E2E"); err != nil {
		t.Fatalf("WaitService = %v", err)
	}
	if v, err := c.Call(ctx, "E2E.echo", "x"); err != nil || v != "x" {
		t.Fatalf("Call after WaitService = %v, %v", v, err)
	}
	c.Close()
	if err := c.WaitService(ctx, "E2E"); !errors.Is(err, gate.ErrClosed) {
		t.Fatalf("WaitService on a closed client = %v, want ErrClosed", err)
	}
}

// fakeOldBroker answers client requests on a ROUTER at endpoint as a
// gaterpc 0.2.12 broker would for WaitService: Gate.service_stats is an
// unknown function (AttributeError), and Gate.query_service answers nil
// until it has been asked absentFor times, then the service description.
// It owns its socket on its own goroutine until stop is closed.
func fakeOldBroker(t *testing.T, zctx *zmq.Context, endpoint string, absentFor int32, stats, queries *atomic.Int32) (stop func()) {
	t.Helper()
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	if err := router.Bind(endpoint); err != nil {
		router.Close()
		t.Fatal(err)
	}
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = router.SetLinger(0); router.Close() }()
		poller := zmq.NewPoller()
		poller.Add(router, zmq.POLLIN)
		for {
			select {
			case <-quit:
				return
			default:
			}
			if polled, err := poller.Poll(10 * time.Millisecond); err != nil || len(polled) == 0 {
				continue
			}
			msg, err := router.RecvMessageBytes(0)
			if err != nil {
				continue
			}
			id, rest, err := wire.SplitRouting(msg)
			if err != nil {
				continue
			}
			req, err := wire.ParseClientRequest(rest)
			if err != nil {
				continue
			}
			fn, _, _, err := codec.DecodeRequestBody(req.Body)
			if err != nil {
				continue
			}
			var body []byte
			switch fn {
			case "service_stats":
				stats.Add(1)
				body, _ = codec.EncodeException("AttributeError", "AttributeError('Function not found: service_stats')", "")
			case "query_service":
				if queries.Add(1) > absentFor {
					body, _ = codec.EncodeResult("old service")
				} else {
					body, _ = codec.EncodeResult(nil)
				}
			case "keepalive":
				body, _ = codec.EncodeResult([]byte("200"))
			default:
				body, _ = codec.EncodeResult(nil)
			}
			reply := wire.ClientReply{Service: req.Service, RequestID: req.RequestID, Body: [][]byte{body}}.Frames()
			_, _ = router.SendMessage(append([][]byte{id}, reply...))
		}
	}()
	return func() { close(quit); <-done }
}

// TestClientWaitServiceOldBroker: against a 0.2.12 broker (no
// Gate.service_stats) WaitService falls back to Gate.query_service after
// one attempt and returns once the service is known.
func TestClientWaitServiceOldBroker(t *testing.T) {
	zctx := gatetest.NewZMQContext(t)
	var stats, queries atomic.Int32
	stop := fakeOldBroker(t, zctx, "inproc://fake-old-broker", 2, &stats, &queries)
	defer stop()
	c, err := gate.NewClient("inproc://fake-old-broker", gate.WithZMQContext(zctx), gate.WithLogger(clQuiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitService(clCtx(t), "Old"); err != nil {
		t.Fatalf("WaitService = %v", err)
	}
	if s, q := stats.Load(), queries.Load(); s != 1 || q != 3 {
		t.Fatalf("service_stats asked %d times, query_service %d; want 1 and 3", s, q)
	}
}
