package gate

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/gaterpc/gate/internal/chunk"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// rawProducer answers every call to fn on rb with bodies, honouring the
// window the call announced (when it announced one), until stop closes.
// It owns rb.in while it runs.
func rawProducer(b *testing.B, rb *rawBroker, fn string, bodies func() [][][]byte) (stop func()) {
	done := make(chan struct{})
	quit := make(chan struct{})
	want, _ := codec.Marshal(fn)
	go func() {
		defer close(done)
		var p *windowedPeer
		var pending [][][]byte
		for {
			// Send while the window allows.
			for p != nil && len(pending) > 0 {
				kind, payload := wire.ClassifyReply(pending[0])
				if counted := kind == wire.ReplyStreamItem || kind == wire.ReplyHugeChunk; counted {
					if p.win.Items > 0 && !p.win.MaySend(p.sent, p.credit) {
						break
					}
					p.sent.Items++
					p.sent.Bytes += int64(len(payload))
				}
				select {
				case rb.out <- wire.WithRouting(p.routing, wire.ClientReply{Service: p.req.Service, RequestID: p.req.RequestID, Body: pending[0]}.Frames()):
				case <-quit:
					return
				}
				pending = pending[1:]
			}
			var m [][]byte
			select {
			case m = <-rb.in:
			case <-quit:
				return
			}
			req, err := wire.ParseClientRequest(m[1:])
			if err != nil || len(req.Body) == 0 {
				continue
			}
			switch {
			case string(req.Body[0]) == string(want):
				p = &windowedPeer{rb: rb, routing: m[0], req: req}
				if _, meta, err := wire.DecodeRequestID(req.RequestID); err == nil {
					p.win, _ = wire.ParseWindow(meta.MD[wire.MetaWindow])
				}
				pending = bodies()
			case req.Service == "Gate" && p != nil:
				fnName, args, _, err := codec.DecodeRequestBody(req.Body)
				if err != nil || fnName != wire.CreditFunction || len(args) != 3 {
					continue
				}
				items, _ := codec.Decode(args[1])
				n, _ := codec.Decode(args[2])
				p.credit = wire.Credit{Items: toInt64(items), Bytes: toInt64(n)}
			}
		}
	}()
	return func() { close(quit); <-done }
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	}
	return 0
}

// BenchmarkClientStreamRaw measures the client's stream path alone: a raw
// peer (broker and worker in one ROUTER) sends 10,000 small items per op,
// honouring the window when flow control is on (items/s).
func BenchmarkClientStreamRaw(b *testing.B) {
	for _, tc := range []struct {
		name        string
		windowBytes int64
	}{{"flow", defaultFlowWindowBytes}, {"noflow", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			const items = 10000
			rb := startRawBroker(b, true)
			set := DefaultSettings()
			set.FlowWindowBytes = tc.windowBytes
			if tc.windowBytes < 0 {
				// Without a window the producer sends everything at once:
				// no high-water mark may drop it, no item limit refuse it.
				set.StreamReplyMaxSize = 1 << 16
				set.HWM = -1
			}
			c := testClient(b, rb.endpoint, rb.zctx, WithSettings(set))
			item, _ := codec.Marshal(make([]byte, 100))
			var bodies [][][]byte
			for range items {
				bodies = append(bodies, wire.StreamItemBody(item))
			}
			bodies = append(bodies, wire.StreamEndBody())
			stop := rawProducer(b, rb, "gen", func() [][][]byte { return bodies })
			defer stop()
			ctx, cancel := context.WithTimeout(context.Background(), 5*clientTestTimeout)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				s, err := c.Stream(ctx, "Svc.gen")
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for _, err := range s.All() {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != items {
					b.Fatalf("%d items", n)
				}
			}
			b.ReportMetric(float64(b.N*items)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// BenchmarkClientHugeRaw receives a 32 MiB incompressible value in 256 KiB
// zstd chunks from a raw peer, with Call (assembled, decoded) and with
// CallReader (streamed to io.Discard), and reports MB/s.
func BenchmarkClientHugeRaw(b *testing.B) {
	const size = 32 << 20
	value := noise(size)
	for _, comp := range []string{"gzip", "zstd"} {
		bodies, _ := hugeBodies(b, comp, value, 256<<10)
		for _, mode := range []string{"Call", "CallReader"} {
			b.Run(comp+"/"+mode, func(b *testing.B) {
				rb := startRawBroker(b, true)
				set := DefaultSettings()
				set.HugeDataCompress = comp
				c := testClient(b, rb.endpoint, rb.zctx, WithSettings(set))
				stop := rawProducer(b, rb, "blob", func() [][][]byte { return bodies })
				defer stop()
				ctx, cancel := context.WithTimeout(context.Background(), 5*clientTestTimeout)
				defer cancel()
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					if mode == "Call" {
						v, err := c.Call(ctx, "Svc.blob")
						if bv, _ := v.([]byte); err != nil || len(bv) != size {
							b.Fatal(err)
						}
						continue
					}
					r, err := c.CallReader(ctx, "Svc.blob")
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, r)
					r.Close()
					if err != nil || n != size+5 {
						b.Fatal(n, err)
					}
				}
			})
		}
	}
}

// BenchmarkClientHugeBomb sends a client capped at 32 MiB a bomb: 128 MiB
// of zeros behind a msgpack bin header that announces just under the cap
// (so the size hint does not refuse it early), and reports the bytes the client allocates
// per refused call, also as a multiple of the cap (alloc/cap).
func BenchmarkClientHugeBomb(b *testing.B) {
	const limit, size = 32 << 20, 128 << 20
	for _, comp := range []string{"gzip", "zstd"} {
		raw := make([]byte, size)
		raw[0] = 0xc6 // bin32 announcing just under the cap; more follows
		binary.BigEndian.PutUint32(raw[1:], limit-5)
		chunks, err := chunk.Split(raw, chunk.WithCompression(comp), chunk.WithChunkSize(256<<10))
		if err != nil {
			b.Fatal(err)
		}
		var bodies [][][]byte
		for _, ch := range chunks {
			bodies = append(bodies, wire.HugeChunkBody(ch))
		}
		bodies = append(bodies, wire.HugeEndBody())
		for _, mode := range []string{"Call", "CallReader"} {
			b.Run(comp+"/"+mode, func(b *testing.B) {
				rb := startRawBroker(b, true)
				set := DefaultSettings()
				set.HugeDataMaxSize = limit
				set.HugeDataCompress = comp
				c := testClient(b, rb.endpoint, rb.zctx, WithSettings(set))
				stop := rawProducer(b, rb, "bomb", func() [][][]byte { return bodies })
				defer stop()
				ctx, cancel := context.WithTimeout(context.Background(), 5*clientTestTimeout)
				defer cancel()
				b.ReportAllocs()
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				for b.Loop() {
					var err error
					if mode == "Call" {
						_, err = c.Call(ctx, "Svc.bomb")
					} else {
						var r *HugeReader
						if r, err = c.CallReader(ctx, "Svc.bomb"); err == nil {
							_, err = io.Copy(io.Discard, r)
							r.Close()
						}
					}
					if !errors.Is(err, ErrTooLarge) {
						b.Fatalf("bomb: %v, want ErrTooLarge", err)
					}
				}
				runtime.ReadMemStats(&ms1)
				b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/limit, "alloc/cap")
			})
		}
	}
}
