package gate

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// BenchmarkWorkerHugeReply measures a 16 MiB HugeData reply (half
// incompressible) from a worker's method to a raw ROUTER over inproc:
// compression, chunking and the socket loop. "1000B" is a client that
// asks for nothing (0.2.12: 1000-byte chunks, no window); "256KiB-window"
// asks for 256 KiB chunks through a relaying broker, which the ROUTER
// plays by granting credit as it reads (an 8 MiB window).
func BenchmarkWorkerHugeReply(b *testing.B) {
	const size = 16 << 20
	value := make([]byte, size)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(value[:size/2])
	for i := size / 2; i < size; i++ {
		value[i] = byte(i / 4096)
	}
	for _, comp := range []string{"gzip", "zstd"} {
		for _, mode := range []string{"1000B", "256KiB-window"} {
			b.Run(comp+"/"+mode, func(b *testing.B) {
				fb := newFakeBackend(b)
				svc := mustService(b, "Bench")
				mustOK(b, Func1(svc, "blob", func(context.Context, int) (HugeValue, error) { return Huge(value), nil }))
				startWorker(b, fb, svc, WithHugeData(comp, 1, 1000))
				fb.expectReady()
				client := []byte("c")
				rid := []byte("plain")
				if mode != "1000B" {
					rid = wire.EncodeRequestID([]byte("w"), wire.RequestMeta{MD: map[string]string{
						wire.MetaWindow: "1024,8388608", wire.MetaRelay: "1", wire.MetaChunk: "262144"}})
				}
				body, _ := codec.EncodeRequestBody("blob", []any{0}, nil)
				b.ReportAllocs()
				b.SetBytes(size)
				for b.Loop() {
					fb.request(client, rid, body...)
					var got wire.Credit
					for done := false; !done; {
						m := fb.next(workerRecvTimeout)
						kind, payload := wire.ClassifyReply(m.Body)
						switch kind {
						case wire.ReplyHugeChunk:
							got.Items++
							got.Bytes += int64(len(payload))
							if got.Items%8 == 0 {
								fb.send(wire.WorkerMessage{Command: wire.CmdCredit, Client: client, RequestID: rid,
									Body: [][]byte{wire.AppendCredit(nil, got)}}.Frames()...)
							}
						case wire.ReplyHugeEnd:
							done = true
						default:
							b.Fatalf("reply kind %v", kind)
						}
					}
				}
			})
		}
	}
}

// BenchmarkWorkerStreamWindow measures a stream of 100-byte items from a
// worker's iterator to a raw ROUTER over inproc, with a 1024-item window
// the ROUTER refills every 512 items (as a relaying broker passes on a
// client's credit), and without a window (a 0.2.12 broker). One op is one
// item.
func BenchmarkWorkerStreamWindow(b *testing.B) {
	item := make([]byte, 100)
	for _, mode := range []string{"no-window", "window-1024"} {
		b.Run(mode, func(b *testing.B) {
			fb := newFakeBackend(b)
			svc := mustService(b, "Bench")
			mustOK(b, Func1(svc, "items", func(_ context.Context, n int) (func(func([]byte) bool), error) {
				return func(yield func([]byte) bool) {
					for range n {
						if !yield(item) {
							return
						}
					}
				}, nil
			}))
			startWorker(b, fb, svc)
			fb.expectReady()
			client := []byte("c")
			rid := []byte("plain")
			if mode != "no-window" {
				rid = wire.EncodeRequestID([]byte("w"), wire.RequestMeta{MD: map[string]string{
					wire.MetaWindow: "1024,8388608", wire.MetaRelay: "1"}})
			}
			body, _ := codec.EncodeRequestBody("items", []any{b.N}, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(item)))
			b.ResetTimer()
			fb.request(client, rid, body...)
			var got wire.Credit
			for done := false; !done; {
				m := fb.next(workerRecvTimeout)
				kind, payload := wire.ClassifyReply(m.Body)
				switch kind {
				case wire.ReplyStreamItem:
					got.Items++
					got.Bytes += int64(len(payload))
					if got.Items%512 == 0 {
						fb.send(wire.WorkerMessage{Command: wire.CmdCredit, Client: client, RequestID: rid,
							Body: [][]byte{wire.AppendCredit(nil, got)}}.Frames()...)
					}
				case wire.ReplyStreamEnd:
					done = true
				default:
					b.Fatalf("reply kind %v", kind)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
