package zmqx

import (
	"context"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// BenchmarkMailboxPost hands b.N closures from 4 goroutines to a loop
// that polls the mailbox with zmq4's Poller: the cost of one hand-off,
// wake-up included. (The same benchmark runs against the mailbox before
// the Queue rewrite: see docs/performance.md.)
func BenchmarkMailboxPost(b *testing.B) {
	zctx, err := zmq.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	defer zctx.Term()
	ready := make(chan *Mailbox)
	done := make(chan struct{})
	total := b.N
	go func() {
		defer close(done)
		mb, err := NewMailbox(zctx, 1024)
		if err != nil {
			b.Error(err)
			close(ready)
			return
		}
		defer mb.Close()
		ready <- mb
		p := zmq.NewPoller()
		p.Add(mb.Socket(), zmq.POLLIN)
		got := 0
		for got < total {
			if _, err := p.Poll(time.Second); err != nil {
				b.Error(err)
				return
			}
			got += mb.Drain()
		}
	}()
	mb := <-ready
	if mb == nil {
		b.FailNow()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	ctx := context.Background()
	const producers = 4
	for i := range producers {
		n := total / producers
		if i == 0 {
			n += total % producers
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if err := mb.Post(ctx, func() {}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-done
}

// BenchmarkQueuePush is BenchmarkMailboxPost for a Queue polled through
// its eventfd with a Poller, as the client and the worker do.
func BenchmarkQueuePush(b *testing.B) {
	q, err := NewQueue[int](1024)
	if err != nil {
		b.Fatal(err)
	}
	total := b.N
	done := make(chan struct{})
	go func() {
		defer close(done)
		var p Poller
		_, _ = p.AddFd(q.Fd())
		var batch []int
		for got := 0; got < total; {
			timeout := time.Second
			if q.Sleep() {
				timeout = 0
			}
			if _, err := p.Poll(timeout); err != nil {
				b.Error(err)
				return
			}
			q.Awake(p.Ready(0) != 0)
			batch = q.Take(batch)
			got += len(batch)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	ctx := context.Background()
	const producers = 4
	for i := range producers {
		n := total / producers
		if i == 0 {
			n += total % producers
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				if err := q.PushWait(ctx, j); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-done
	q.Close()
}
