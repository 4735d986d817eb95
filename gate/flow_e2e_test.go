package gate_test

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// Flow control end to end: a gate client, a gate broker and a gate worker
// (docs/flow-control.md), over TCP on 127.0.0.1.

// flowSettings is a small window so that the bounds show quickly.
func flowE2ESettings(items int, bytes int64) gate.Settings {
	s := gate.DefaultSettings()
	s.StreamReplyMaxSize = items
	s.FlowWindowBytes = bytes
	s.ReplyTimeout = 500 * time.Millisecond // a paused reader must not trip it
	return s
}

// flowSource counts what a worker's producer has made.
type flowSource struct {
	produced atomic.Int64 // stream items yielded or bytes read by the worker
	done     chan struct{}
}

func flowE2EService(t *testing.T, src *flowSource) *gate.Service {
	t.Helper()
	svc, err := gate.NewService("Flow", "flow-control end-to-end tests")
	if err != nil {
		t.Fatal(err)
	}
	// gen streams 0, 1, 2, ... of 1 KiB each until the caller goes.
	if err := svc.Register("gen", func(ctx context.Context) (iter.Seq2[[]byte, error], error) {
		return func(yield func([]byte, error) bool) {
			defer close(src.done)
			for i := 0; ctx.Err() == nil; i++ {
				item := make([]byte, 1024)
				item[0], item[1], item[2], item[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
				src.produced.Add(1)
				if !yield(item, nil) {
					return
				}
			}
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// blob sends n pseudo-random bytes read as they are sent.
	if err := svc.Register("blob", func(ctx context.Context, n int64) (gate.HugeValue, error) {
		return gate.HugeBinary(n, &countingReader{n: &src.produced}), nil
	}); err != nil {
		t.Fatal(err)
	}
	return svc
}

// countingReader yields pseudo-random bytes and counts them.
type countingReader struct {
	n *atomic.Int64
	x uint64
}

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		r.x = r.x*6364136223846793005 + 1442695040888963407
		p[i] = byte(r.x >> 56)
	}
	r.n.Add(int64(len(p)))
	return len(p), nil
}

func flowE2EEnv(t *testing.T, set gate.Settings) (*gatetest.Harness, *gate.Client, *flowSource) {
	t.Helper()
	tcp := gatetest.Transport{Name: "tcp", Endpoints: func(testing.TB) (string, string) {
		return "tcp://127.0.0.1:*", "tcp://127.0.0.1:0"
	}}
	h := gatetest.StartBrokerOn(t, tcp, broker.WithHeartbeat(clHeartbeat))
	src := &flowSource{done: make(chan struct{})}
	clStartWorker(t, h, flowE2EService(t, src), gate.WithSettings(set))
	c := clNewClient(t, h, gate.WithSettings(set))
	ctx := clCtx(t)
	for {
		if _, err := c.QueryService(ctx, "Flow"); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("worker never registered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h, c, src
}

// A reader that stops for many reply timeouts loses nothing and gets no
// error; meanwhile the worker's producer stays within one window of what
// the reader consumed, and the broker's queue for the client within one
// window of bytes; after Close the producer stops.
func TestFlowE2EPausedStreamReader(t *testing.T) {
	const items, window = 32, 64 << 10
	h, c, src := flowE2EEnv(t, flowE2ESettings(items, window))
	ctx := clCtx(t)
	s, err := c.Stream(ctx, "Flow.gen")
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	read := func(n int) {
		t.Helper()
		for range n {
			v, err := s.Recv()
			if err != nil {
				t.Fatalf("item %d: %v", next, err)
			}
			b := v.([]byte)
			if got := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3]); got != next {
				t.Fatalf("item %d arrived where %d was due", got, next)
			}
			next++
		}
	}
	read(100)
	time.Sleep(2 * time.Second) // four reply timeouts
	// An item is 1 KiB + msgpack header: the byte window (64 KiB) allows
	// fewer than 64 items, the item window 32; one more may be in the
	// producer's hands (yielded, waiting for credit).
	if p := src.produced.Load(); p > int64(next+items+1) {
		t.Errorf("paused reader at %d items, the producer made %d: more than one window (%d items) ahead", next, p, items)
	}
	if st := h.Broker.Stats(); st.MaxClientBuffered > window+4096 {
		t.Errorf("the broker held %d bytes for the client, window %d", st.MaxClientBuffered, window)
	}
	read(2000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-src.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the producer still runs 10 s after the reader closed the stream")
	}
	if p := src.produced.Load(); p > int64(next+items+1) {
		t.Errorf("closed at %d items, the producer made %d", next, p)
	}
}

// A HugeData reply read slowly with CallReader: the worker reads its
// source at most a window (plus the compressor's lookahead) ahead of the
// reader, and the value arrives whole.
func TestFlowE2EHugeReader(t *testing.T) {
	const window = 1 << 20
	set := flowE2ESettings(64, window)
	set.HugeDataChunkSize = 64 << 10
	set.HugeDataCompress = "zstd"
	_, c, src := flowE2EEnv(t, set)
	ctx := clCtx(t)
	const size = 32 << 20
	r, err := c.CallReader(ctx, "Flow.blob", size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	body, n, err := gate.ReadBinary(r)
	if err != nil || n != size {
		t.Fatalf("ReadBinary: %d, %v", n, err)
	}
	buf := make([]byte, 256<<10)
	var read int64
	for {
		k, err := body.Read(buf)
		read += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", read, err)
		}
		if read < 4<<20 {
			continue
		}
		if read == 4<<20 || (read > 4<<20 && read-int64(k) < 4<<20) {
			time.Sleep(time.Second) // pause once, then check the producer
			// Random bytes do not compress: a window of compressed bytes is
			// about a window of source bytes; the compressor may hold a few
			// chunks more.
			if ahead := src.produced.Load() - read; ahead > window+8*(64<<10)+(1<<20) {
				t.Errorf("reader paused at %d bytes, the worker had read %d: %d ahead, window %d", read, src.produced.Load(), ahead, window)
			}
		}
	}
	if read != size {
		t.Fatalf("read %d of %d bytes", read, size)
	}
}
