package gate

import (
	"context"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// BenchmarkClientCallRawEcho measures the client alone: a ROUTER peer that
// answers every request at once, with no broker or worker in between.
func BenchmarkClientCallRawEcho(b *testing.B) {
	zctx, err := zmq.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	ep := zmqx.UniqueInproc("rawecho")
	router, _ := zctx.NewSocket(zmq.ROUTER)
	_ = router.SetLinger(0)
	if err := router.Bind(ep); err != nil {
		b.Fatal(err)
	}
	ok, _ := codec.EncodeResult(nil)
	done := make(chan struct{})
	go func() { // owns router until the context is terminated
		defer close(done)
		defer router.Close()
		for {
			m, err := router.RecvMessageBytes(0)
			if err != nil {
				return
			}
			req, err := wire.ParseClientRequest(m[1:])
			if err != nil {
				continue
			}
			_, _ = router.SendMessage(wire.WithRouting(m[0], wire.ClientReply{Service: req.Service, RequestID: req.RequestID, Body: [][]byte{ok}}.Frames()))
		}
	}()
	c, err := NewClient(ep, WithZMQContext(zctx))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Call(ctx, "Svc.echo", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.StopTimer()
	c.Close()
	zctx.SetRetryAfterEINTR(false)
	termed := make(chan struct{})
	go func() { _ = zctx.Term(); close(termed) }() // unblocks the router's Recv with ETERM
	<-done
	<-termed
}
