package zmqx

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// countSignal counts wake-ups instead of writing a descriptor.
type countSignal struct {
	mu sync.Mutex
	n  int
}

func (c *countSignal) signal() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *countSignal) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestQueueSignalsOncePerBatch(t *testing.T) {
	sig := &countSignal{}
	q := newQueue[int](1000, sig)
	for i := range 10 { // the loop is awake: no signal at all
		if err := q.Push(i); err != nil {
			t.Fatal(err)
		}
	}
	if sig.count() != 0 {
		t.Fatalf("%d signals while the loop was awake, want 0", sig.count())
	}
	if !q.Sleep() {
		t.Fatal("Sleep with 10 queued values reported none pending")
	}
	batch := q.Take(nil)
	if len(batch) != 10 || batch[0] != 0 || batch[9] != 9 {
		t.Fatalf("batch = %v", batch)
	}
	if q.Sleep() {
		t.Fatal("Sleep on an empty queue reported values pending")
	}
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				_ = q.Push(p*1000 + i)
			}
		}()
	}
	wg.Wait()
	if sig.count() != 1 {
		t.Fatalf("%d signals for one batch pushed to a sleeping loop, want 1", sig.count())
	}
	q.Awake(true)
	q.Wake()
	if sig.count() != 1 {
		t.Fatalf("Wake on an awake loop signalled (%d signals)", sig.count())
	}
	if got := len(q.Take(batch)); got != 400 {
		t.Fatalf("took %d values, want 400", got)
	}
}

func TestQueuePushWaitBackPressure(t *testing.T) {
	q := newQueue[int](2, &countSignal{})
	_ = q.Push(1)
	_ = q.Push(2)
	if err := q.Push(3); !errors.Is(err, ErrFull) {
		t.Fatalf("Push on a full queue: %v, want ErrFull", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.PushWait(ctx, 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("PushWait with a done ctx on a full queue: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.PushWait(context.Background(), 3) }()
	// Wait until the producer is parked on the full queue (bounded loop).
	for i := 0; ; i++ {
		q.mu.Lock()
		waiting := q.room != nil
		q.mu.Unlock()
		if waiting {
			break
		}
		if i > 10000 {
			t.Fatal("producer never waited for room")
		}
		time.Sleep(time.Millisecond)
	}
	if got := q.Take(nil); len(got) != 2 {
		t.Fatalf("took %v", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("PushWait after Take: %v", err)
	}
	if got := q.Take(nil); len(got) != 1 || got[0] != 3 {
		t.Fatalf("took %v, want [3]", got)
	}
	go func() { _ = q.Push(4); _ = q.Push(5); done <- q.PushWait(context.Background(), 6) }()
	for q.Len() < 2 {
		time.Sleep(time.Millisecond)
	}
	q.Close()
	if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("PushWait on a closed queue: %v", err)
	}
	if err := q.Push(7); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Close: %v, want ErrClosed", err)
	}
	q.Wake() // harmless after Close
	if got := q.Take(nil); len(got) < 2 || got[0] != 4 {
		t.Fatalf("values queued before Close: %v", got)
	}
}

// TestQueueLoopNoLostWakeups runs a loop that polls the eventfd with a
// long timeout: a lost wake-up shows as a poll that times out with values
// still queued.
func TestQueueLoopNoLostWakeups(t *testing.T) {
	q, err := NewQueue[int](64)
	if err != nil {
		t.Fatal(err)
	}
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.PushWait(context.Background(), p*each+i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var p Poller
	if _, err := p.AddFd(q.Fd()); err != nil {
		t.Fatal(err)
	}
	next := make([]int, producers) // per producer, values arrive in order
	got := 0
	var batch []int
	for got < producers*each {
		pending := q.Sleep()
		timeout := 10 * time.Second
		if pending {
			timeout = 0
		}
		n, err := p.Poll(timeout)
		if err != nil {
			t.Fatal(err)
		}
		q.Awake(p.Ready(0) != 0)
		if n == 0 && !pending && q.Len() > 0 {
			t.Fatalf("poll timed out with %d values queued: lost wake-up", q.Len())
		}
		batch = q.Take(batch)
		for _, v := range batch {
			pr, i := v/each, v%each
			if next[pr] != i {
				t.Fatalf("producer %d: got value %d, want %d", pr, i, next[pr])
			}
			next[pr]++
			got++
		}
	}
	wg.Wait()
	q.Close()
}

func TestPollerSocketAndFd(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	ep := UniqueInproc("poller")
	a, _ := zctx.NewSocket(zmq.PAIR)
	b, _ := zctx.NewSocket(zmq.PAIR)
	defer a.Close()
	defer b.Close()
	_ = a.SetLinger(0)
	_ = b.SetLinger(0)
	if err := a.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ep); err != nil {
		t.Fatal(err)
	}
	q, err := NewQueue[int](4)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var p Poller
	fdItem, _ := p.AddFd(q.Fd())
	sockItem, err := p.AddSocket(a, zmq.POLLIN)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Poll(0); err != nil || n != 0 {
		t.Fatalf("idle poll: %d ready, %v", n, err)
	}
	if err := SendMessage(b, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Poll(10 * time.Second); err != nil || n != 1 || p.Ready(sockItem)&zmq.POLLIN == 0 || p.Ready(fdItem) != 0 {
		t.Fatalf("socket readable: %d ready, %v, socket %v fd %v", n, err, p.Ready(sockItem), p.Ready(fdItem))
	}
	if _, err := RecvMessage(a); err != nil {
		t.Fatal(err)
	}
	q.Sleep()
	_ = q.Push(1)
	if n, err := p.Poll(10 * time.Second); err != nil || n != 1 || p.Ready(fdItem)&zmq.POLLIN == 0 {
		t.Fatalf("fd readable: %d ready, %v", n, err)
	}
	q.Awake(true)
	if n, err := p.Poll(0); err != nil || n != 0 {
		t.Fatalf("after Awake the wake-up is consumed: %d ready, %v", n, err)
	}
	p.SetEvents(sockItem, zmq.POLLOUT)
	if n, err := p.Poll(0); err != nil || n != 1 || p.Ready(sockItem)&zmq.POLLOUT == 0 {
		t.Fatalf("POLLOUT: %d ready, %v", n, err)
	}
	for range maxPollItems - 2 {
		if _, err := p.AddFd(q.Fd()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.AddFd(q.Fd()); !errors.Is(err, ErrPollerFull) {
		t.Fatalf("AddFd beyond capacity: %v", err)
	}
}
