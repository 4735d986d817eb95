package zmqx

import (
	"bytes"
	"fmt"
	"testing"
)

// TestReceiver checks messages of every shape through one Receiver: small
// ones, more than 16 parts, parts that make its buffer grow, a message
// over the kept size, and messages over the limits (discarded, the next
// one intact). Frames are capped: appending to one does not change the
// next.
func TestReceiver(t *testing.T) {
	in, out := benchPair(t, "receiver-shapes")
	part := func(n int, seed byte) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = seed + byte(i*7)
		}
		return p
	}
	many := make([][]byte, 40)
	for i := range many {
		many[i] = part(i*3, byte(i))
	}
	msgs := [][][]byte{
		{part(5, 1), {}, part(64, 2)},
		{{}},
		many,
		{part(10, 3), part(64<<10, 4), part(3, 5)},
		{part(maxKeep+10, 6), part(7, 7)},
		{part(1, 8), part(2, 9)},
	}
	var r Receiver
	recv := func(lim Limits) ([][]byte, error) {
		for {
			m, err := r.Recv(in, lim)
			if err != errAgain {
				return m, err
			}
		}
	}
	for i, frames := range msgs {
		if err := sendMessageSlow(out, frames); err != nil {
			t.Fatal(err)
		}
		got, err := recv(Limits{})
		if err != nil || len(got) != len(frames) {
			t.Fatalf("message %d: %d parts, %v; want %d", i, len(got), err, len(frames))
		}
		for j := range got {
			_ = append(got[j], 0xee)
		}
		for j := range got {
			if !bytes.Equal(got[j], frames[j]) {
				t.Fatalf("message %d part %d: %d bytes differ from the %d sent", i, j, len(got[j]), len(frames[j]))
			}
		}
	}
	// Over the limits: discarded inside libzmq; the next message arrives.
	for _, c := range []struct {
		lim  Limits
		want error
	}{{Limits{MaxFrames: 3}, ErrTooManyFrames}, {Limits{MaxBytes: 100}, ErrTooLarge}} {
		_ = sendMessageSlow(out, many)
		_ = sendMessageSlow(out, msgs[0])
		if _, err := recv(c.lim); err != c.want {
			t.Fatalf("over %+v: %v, want %v", c.lim, err, c.want)
		}
		got, err := recv(c.lim)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(msgs[0]) {
			t.Fatalf("after the discarded message: %q, %v", got, err)
		}
	}
}

// TestReceiverNoAllocs checks that a Receiver in steady state receives
// small messages without allocating.
func TestReceiverNoAllocs(t *testing.T) {
	in, out := benchPair(t, "receiver-allocs")
	frames := [][]byte{nil, []byte("MDPC01"), []byte("svc"), make([]byte, 16), make([]byte, 64)}
	var r Receiver
	allocs := testing.AllocsPerRun(200, func() {
		if err := SendMessage(out, frames); err != nil {
			t.Fatal(err)
		}
		if m, err := r.Recv(in, Limits{}); err != nil || len(m) != len(frames) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message, want 0", allocs)
	}
}

// BenchmarkReceiver is BenchmarkRecvMessage with a Receiver.
func BenchmarkReceiver(b *testing.B) {
	in, out := benchPair(b, "bench-receiver")
	frames := [][]byte{nil, []byte("MDPC01"), []byte("svc"), make([]byte, 16), make([]byte, 64)}
	var r Receiver
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := SendMessage(out, frames); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Recv(in, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSenderNoAllocs checks that a Sender in steady state sends without
// allocating.
func TestSenderNoAllocs(t *testing.T) {
	in, out := benchPair(t, "sender-allocs")
	frames := [][]byte{nil, []byte("MDPC01"), []byte("svc"), make([]byte, 16), make([]byte, 64)}
	var x Sender
	var r Receiver
	allocs := testing.AllocsPerRun(200, func() {
		if err := x.Send(out, frames); err != nil {
			t.Fatal(err)
		}
		if m, err := r.Recv(in, Limits{}); err != nil || len(m) != len(frames) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message, want 0", allocs)
	}
}
