package zmqx

import (
	"context"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMailboxRunsClosuresOnLoop(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const posters, each = 8, 500
	got := 0
	loopDone := make(chan struct{})
	ready := make(chan *Mailbox)
	go func() { // the loop owns the mailbox socket
		defer close(loopDone)
		mb, err := NewMailbox(zctx, 16)
		if err != nil {
			t.Error(err)
			close(ready)
			return
		}
		defer mb.Close()
		ready <- mb
		poller := zmq.NewPoller()
		poller.Add(mb.Socket(), zmq.POLLIN)
		for got < posters*each && ctx.Err() == nil {
			if _, err := poller.Poll(100 * time.Millisecond); err != nil {
				t.Error(err)
				return
			}
			mb.Drain()
		}
	}()
	mb := <-ready
	if mb == nil {
		t.FailNow()
	}
	var wg sync.WaitGroup
	for range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := mb.Post(ctx, func() { got++ }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-loopDone
	if got != posters*each {
		t.Fatalf("ran %d closures, want %d", got, posters*each)
	}
	if err := mb.TryPost(func() {}); err != ErrClosed {
		t.Fatalf("TryPost after Close = %v, want ErrClosed", err)
	}
}

func TestPollTimeoutClamps(t *testing.T) {
	if got := PollTimeout(-time.Second); got != 0 {
		t.Fatalf("PollTimeout(-1s) = %v, want 0", got)
	}
	if got := PollTimeout(time.Second); got != time.Second {
		t.Fatalf("PollTimeout(1s) = %v", got)
	}
}
