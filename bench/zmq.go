package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// The raw peers (zmq-echo, zmq-client, raw-worker, raw-client) all use
// pebbe/zmq4's plain RecvMessageBytes/SendMessage, so that the client-side
// cost is the same whatever sits in the middle.

// newSocket returns a socket with linger 0 and the given HWM (0: libzmq's
// default of 1000).
func newSocket(zctx *zmq.Context, t zmq.Type, hwm int) (*zmq.Socket, error) {
	s, err := zctx.NewSocket(t)
	if err != nil {
		return nil, err
	}
	_ = s.SetLinger(0)
	if hwm > 0 {
		_ = s.SetSndhwm(hwm)
		_ = s.SetRcvhwm(hwm)
	}
	return s, nil
}

// term ends a context whose sockets are closed; EINTR retries are off
// so that a signal cannot wedge it.
func term(zctx *zmq.Context) {
	zctx.SetRetryAfterEINTR(false)
	_ = zctx.Term()
}

// runZMQProxy is libzmq's zmq_proxy between a ROUTER frontend and a DEALER
// backend, both bound on 127.0.0.1 with random ports.
func runZMQProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("zmq-proxy", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return err
	}
	front, err := newSocket(zctx, zmq.ROUTER, 0)
	if err != nil {
		return err
	}
	back, err := newSocket(zctx, zmq.DEALER, 0)
	if err != nil {
		return err
	}
	if err := errors.Join(front.Bind("tcp://127.0.0.1:*"), back.Bind("tcp://127.0.0.1:*")); err != nil {
		return err
	}
	fe, _ := front.GetLastEndpoint()
	be, _ := back.GetLastEndpoint()
	ready("frontend="+fe, "backend="+be)
	// zmq.Proxy blocks in C until the context is terminated; the
	// process is simply ended by the driver (SIGTERM or SIGKILL).
	go func() {
		<-ctx.Done()
		zctx.SetRetryAfterEINTR(false)
		go func() { _ = zctx.Term() }()
	}()
	_ = zmq.Proxy(front, back, nil)
	return nil
}

// runZMQEcho is the echo peer behind zmq_proxy: a DEALER connected to the
// proxy's backend that sends every message back unchanged (the client's
// routing id first, then the client's frames).
func runZMQEcho(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("zmq-echo", flag.ContinueOnError)
	ep := fs.String("connect", "", "proxy backend endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return err
	}
	defer term(zctx)
	s, err := newSocket(zctx, zmq.DEALER, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Connect(*ep); err != nil {
		return err
	}
	ready("connected=" + *ep)
	return serveLoop(ctx, s, func(msg [][]byte) [][]byte { return msg })
}

// serveLoop polls s and answers each message with handle's frames (none
// when it returns nil) until ctx is done.
func serveLoop(ctx context.Context, s *zmq.Socket, handle func([][]byte) [][]byte) error {
	poller := zmq.NewPoller()
	poller.Add(s, zmq.POLLIN)
	for ctx.Err() == nil {
		if _, err := poller.Poll(100 * time.Millisecond); err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			return err
		}
		for range 256 {
			msg, err := s.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			if out := handle(msg); out != nil {
				if _, err := s.SendMessage(out); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// pipe describes a pipelined request-reply protocol for pipelineClient:
// build the request frames around an 8-byte stamp, and find the stamp in
// a reply (an error for a reply that is not a success).
type pipe struct {
	request func(stamp []byte) [][]byte
	reply   func(msg [][]byte) (stamp []byte, err error)
}

// pipelineClient keeps cf.inflight requests outstanding on one DEALER
// that one goroutine owns: each reply sends the next request. The stamp
// of a request is its send time, so no table of pending requests is
// needed.
func pipelineClient(ctx context.Context, cf *clientFlags, p pipe) (clientResult, error) {
	zctx, err := zmq.NewContext()
	if err != nil {
		return clientResult{}, err
	}
	defer term(zctx)
	s, err := newSocket(zctx, zmq.DEALER, 0)
	if err != nil {
		return clientResult{}, err
	}
	defer s.Close()
	if err := s.Connect(cf.connect); err != nil {
		return clientResult{}, err
	}
	poller := zmq.NewPoller()
	poller.Add(s, zmq.POLLIN)
	base := time.Now()
	send := func() error {
		var stamp [8]byte
		binary.BigEndian.PutUint64(stamp[:], uint64(time.Since(base)))
		_, err := s.SendMessage(p.request(stamp[:]))
		return err
	}
	// Probe until one request succeeds: the far end may still be starting.
	err = retry(ctx, 20*time.Second, func(ctx context.Context) error {
		if err := send(); err != nil {
			return err
		}
		dl, _ := ctx.Deadline()
		for time.Now().Before(dl) {
			if _, err := poller.Poll(time.Until(dl)); err != nil {
				continue
			}
			msg, err := s.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				continue
			}
			_, err = p.reply(msg)
			return err
		}
		return errors.New("no reply to the probe")
	})
	if err != nil {
		return clientResult{}, err
	}
	rec := &recorder{}
	w := newWindow(cf.warmup, cf.duration, cf.inflight)
	outstanding := 0
	for range cf.inflight {
		if err := send(); err != nil {
			return clientResult{}, err
		}
		outstanding++
	}
	lastReply := time.Now()
	for ended := false; !ended && ctx.Err() == nil; {
		now := time.Now()
		if w.over(now) {
			break
		}
		if now.Sub(lastReply) > 10*time.Second {
			return clientResult{}, fmt.Errorf("no reply for 10s with %d outstanding", outstanding)
		}
		if _, err := poller.Poll(100 * time.Millisecond); err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			return clientResult{}, err
		}
		for {
			msg, err := s.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			t1 := time.Now()
			lastReply = t1
			stamp, perr := p.reply(msg)
			var d time.Duration
			if perr == nil {
				d = t1.Sub(base) - time.Duration(binary.BigEndian.Uint64(stamp))
			}
			if rec.record(w, t1, d, perr) {
				ended = true
				break
			}
			if outstanding > 0 {
				outstanding--
			}
			if outstanding < cf.inflight {
				if err := send(); err != nil {
					return clientResult{}, err
				}
				outstanding++
			}
		}
	}
	return summarize(w, rec), nil
}

// runZMQClient pipelines [stamp, payload] requests through zmq_proxy.
func runZMQClient(ctx context.Context, args []string) error {
	cf, err := newClientFlags("zmq-client", args, nil)
	if err != nil {
		return err
	}
	pl := payload(cf.size)
	res, err := pipelineClient(ctx, cf, pipe{
		request: func(stamp []byte) [][]byte { return [][]byte{stamp, pl} },
		reply: func(msg [][]byte) ([]byte, error) {
			if len(msg) != 2 || len(msg[0]) != 8 || len(msg[1]) != len(pl) {
				return nil, errShort
			}
			return msg[0], nil
		},
	})
	if err != nil {
		return err
	}
	return printResult(res)
}
