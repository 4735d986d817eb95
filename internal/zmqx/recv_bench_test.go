package zmqx

import (
	"bytes"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// BenchmarkRecvMessageChunk measures one send and one receive of a HugeData
// chunk's shape at a DEALER (four small frames and a 256 KiB body) over
// inproc, and keeps the last 64 messages alive as a relaying loop does.
func BenchmarkRecvMessageChunk(b *testing.B) {
	in, out := benchPair(b, "bench-recv-chunk")
	frames := [][]byte{nil, []byte("MDPC01"), []byte("\x03"), make([]byte, 16), make([]byte, 256<<10)}
	var keep [64][][]byte
	b.SetBytes(256 << 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := SendMessage(out, frames); err != nil {
			b.Fatal(err)
		}
		m, err := RecvMessage(in)
		if err != nil || len(m) != len(frames) || len(m[4]) != 256<<10 {
			b.Fatal(err)
		}
		keep[i%len(keep)] = m
	}
}

// TestRecvMessageLargeParts checks a message mixing parts above and below
// the own-buffer size (and empty ones): every part arrives intact, and
// appending to one part does not write into another.
func TestRecvMessageLargeParts(t *testing.T) {
	ctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Term()
	in, _ := ctx.NewSocket(zmq.PAIR)
	out, _ := ctx.NewSocket(zmq.PAIR)
	defer in.Close()
	defer out.Close()
	if err := in.Bind("inproc://recv-large-parts"); err != nil {
		t.Fatal(err)
	}
	if err := out.Connect("inproc://recv-large-parts"); err != nil {
		t.Fatal(err)
	}
	part := func(n int, seed byte) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = seed + byte(i*7)
		}
		return p
	}
	frames := [][]byte{part(3, 1), part(ownBuffer, 2), {}, part(ownBuffer-1, 3), part(100<<10, 4), part(10, 5)}
	for _, send := range []func() error{
		func() error { return SendMessage(out, frames) },
		func() error { return sendMessageSlow(out, frames) },
	} {
		if err := send(); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for range 500 {
			if got, err = RecvMessage(in); err != errAgain {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err != nil || len(got) != len(frames) {
			t.Fatalf("RecvMessage = %d parts, %v; want %d", len(got), err, len(frames))
		}
		for i := range got {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("part %d: %d bytes differ from the %d sent", i, len(got[i]), len(frames[i]))
			}
		}
		for i := range got {
			_ = append(got[i], 0xee, 0xee)
		}
		for i := range got {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("appending to a part changed part %d", i)
			}
		}
	}
}

// BenchmarkRecvMessage measures one send and one receive of a 4-part
// 64-byte message (the shape of a small reply at a DEALER) over inproc.
func BenchmarkRecvMessage(b *testing.B) {
	in, out := benchPair(b, "bench-recv")
	frames := [][]byte{nil, []byte("MDPC01"), []byte("svc"), make([]byte, 16), make([]byte, 64)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := SendMessage(out, frames); err != nil {
			b.Fatal(err)
		}
		if _, err := RecvMessage(in); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPair returns a connected inproc PAIR (receiving end, sending end)
// with unlimited high-water marks, closed at the end of b.
func benchPair(b testing.TB, name string) (in, out *zmq.Socket) {
	b.Helper()
	ctx, err := zmq.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	in, _ = ctx.NewSocket(zmq.PAIR)
	out, _ = ctx.NewSocket(zmq.PAIR)
	b.Cleanup(func() {
		in.Close()
		out.Close()
		ctx.Term()
	})
	in.SetRcvhwm(0)
	out.SetSndhwm(0)
	if err := in.Bind("inproc://" + name); err != nil {
		b.Fatal(err)
	}
	if err := out.Connect("inproc://" + name); err != nil {
		b.Fatal(err)
	}
	return in, out
}
