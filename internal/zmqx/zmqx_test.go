package zmqx

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"sync"
	"syscall"
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

func TestSendRecvMessage(t *testing.T) {
	if !rawOK {
		t.Error("zmq.Socket's layout is not the one RecvMessage reads: it takes the slow path")
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	ep := UniqueInproc("recv")
	a, _ := zctx.NewSocket(zmq.PAIR)
	b, _ := zctx.NewSocket(zmq.PAIR)
	defer a.Close()
	defer b.Close()
	if err := a.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ep); err != nil {
		t.Fatal(err)
	}
	if _, err := RecvMessage(b); zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
		t.Fatalf("RecvMessage on an empty socket = %v, want EAGAIN", err)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	eight := [][]byte{[]byte("a"), {}, []byte("ccc"), make([]byte, 9), []byte("e"), []byte("f"), big, []byte("h")}
	for _, want := range [][][]byte{
		{[]byte("one")},
		{{}},
		{{}, {}, {}},
		eight,
		append(slices.Clone(eight), eight...), // the most one cgo call takes
		append(append(slices.Clone(eight), eight...), []byte("17"), nil), // the rest part by part
		{[]byte("small"), make([]byte, sendInline)},                      // sent part by part
	} {
		if err := SendMessage(a, want); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for deadline := time.Now().Add(5 * time.Second); ; {
			got, err = RecvMessage(b)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err != nil || len(got) != len(want) {
			t.Fatalf("RecvMessage = %d frames, %v; want %d", len(got), err, len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%d frames: frame %d = %.20q, want %.20q", len(want), i, got[i], want[i])
			}
			if got[i] == nil || cap(got[i]) != len(got[i]) {
				t.Errorf("%d frames: frame %d has len %d, cap %d (nil %v): want a non-nil frame capped at its length",
					len(want), i, len(got[i]), cap(got[i]), got[i] == nil)
			}
		}
		if len(got) > 1 {
			_ = append(got[0], 'X') // must not reach got[1]
			if !bytes.Equal(got[1], want[1]) {
				t.Errorf("appending to frame 0 changed frame 1")
			}
		}
	}
	if _, err := RecvMessage(b); zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
		t.Fatalf("RecvMessage after the last message = %v, want EAGAIN", err)
	}

	// A PAIR socket with no peer cannot take a message.
	c, _ := zctx.NewSocket(zmq.PAIR)
	defer c.Close()
	if err := c.Bind(UniqueInproc("lonely")); err != nil {
		t.Fatal(err)
	}
	for _, frames := range [][][]byte{{[]byte("x")}, {make([]byte, sendInline+1)}} {
		if err := SendMessage(c, frames); zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
			t.Errorf("SendMessage of %d bytes with no peer = %v, want EAGAIN", len(frames[0]), err)
		}
	}
}

// TestRecvMessageLimit checks that a message over its limits is reported
// by reason and discarded inside libzmq: the receive allocates almost
// nothing in Go (the old path copied every part first), and the message
// after it arrives intact.
func TestRecvMessageLimit(t *testing.T) {
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	ep := UniqueInproc("limit")
	a, _ := zctx.NewSocket(zmq.PAIR)
	b, _ := zctx.NewSocket(zmq.PAIR)
	defer a.Close()
	defer b.Close()
	if err := a.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ep); err != nil {
		t.Fatal(err)
	}
	poller := zmq.NewPoller()
	poller.Add(b, zmq.POLLIN)
	lim := Limits{MaxFrames: 20, MaxBytes: 1 << 20}
	big := make([]byte, 400<<10)
	many := make([][]byte, 100000) // empty frames
	for i := range many {
		many[i] = []byte{}
	}
	seventeen := make([][]byte, 17)
	for i := range seventeen {
		seventeen[i] = []byte{byte(i)}
	}
	cases := []struct {
		name    string
		frames  [][]byte
		want    error
		maxLeak uint64 // Go bytes the receive may allocate
	}{
		{"too many empty frames", many, ErrTooManyFrames, 64 << 10},
		{"too many bytes", [][]byte{big, big, big, big, big, big, big, big, big, big}, ErrTooLarge, 64 << 10},
		{"too many bytes in a later batch", append(slices.Clone(seventeen), big, big, big), ErrTooLarge, 64 << 10},
		{"one frame too many", append(slices.Clone(seventeen), []byte("18"), nil, nil, []byte("21")), ErrTooManyFrames, 64 << 10},
		{"at the frame limit", append(slices.Clone(seventeen), nil, nil, []byte("20")), nil, 1 << 20},
		{"at the byte limit", [][]byte{make([]byte, 1<<19), make([]byte, 1<<19)}, nil, 2 << 20},
	}
	for _, tc := range cases {
		if err := SendMessage(a, tc.frames); err != nil {
			t.Fatalf("%s: send: %v", tc.name, err)
		}
		if err := SendMessage(a, [][]byte{[]byte("next"), []byte(tc.name)}); err != nil {
			t.Fatal(err)
		}
		if _, err := poller.Poll(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := RecvMessageLimit(b, lim)
		runtime.ReadMemStats(&after)
		if err != tc.want {
			t.Fatalf("%s: RecvMessageLimit = %d frames, %v; want %v", tc.name, len(got), err, tc.want)
		}
		if tc.want == nil && len(got) != len(tc.frames) {
			t.Fatalf("%s: got %d frames, want %d", tc.name, len(got), len(tc.frames))
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > tc.maxLeak {
			t.Errorf("%s: the receive allocated %d bytes in Go, want at most %d", tc.name, n, tc.maxLeak)
		}
		next, err := RecvMessageLimit(b, lim)
		if err != nil || len(next) != 2 || string(next[1]) != tc.name {
			t.Fatalf("%s: the message after = %q, %v; want [next %q]", tc.name, next, err, tc.name)
		}
	}
	// The fallback path (zmq4's calls) enforces the same limits.
	if err := SendMessage(a, many); err != nil {
		t.Fatal(err)
	}
	if _, err := poller.Poll(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := recvMessageSlow(b, lim); err != ErrTooManyFrames {
		t.Fatalf("recvMessageSlow = %v, want ErrTooManyFrames", err)
	}
}
