package zmqx

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// TestRecvHead reads the head of messages with RecvHead and the rest with
// RecvMessage, over a CURVE tcp connection whose ZAP handler sets a User-Id.
func TestRecvHead(t *testing.T) {
	if !zmq.HasCurve() {
		if os.Getenv("CI") != "" {
			t.Fatal("libzmq without CURVE under CI: install Debian's libzmq3-dev (built with libsodium)")
		}
		t.Skip("libzmq without CURVE: RecvHead's test needs libzmq built with libsodium (Debian's libzmq3-dev is)")
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer zctx.Term()
	zap, _ := zctx.NewSocket(zmq.REP)
	defer zap.Close()
	if err := zap.Bind("inproc://zeromq.zap.01"); err != nil {
		t.Fatal(err)
	}
	spub, ssec, _ := zmq.NewCurveKeypair()
	cpub, csec, _ := zmq.NewCurveKeypair()
	r, _ := zctx.NewSocket(zmq.ROUTER)
	defer r.Close()
	_ = Setup(r, 0, 0, nil)
	_ = r.SetCurveServer(1)
	_ = r.SetCurveSecretkey(ssec)
	_ = r.SetZapDomain("test")
	if err := r.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, _ := r.GetLastEndpoint()
	d, _ := zctx.NewSocket(zmq.DEALER)
	defer d.Close()
	_ = Setup(d, 0, 0, []byte("peer"))
	_ = d.SetCurveServerkey(spub)
	_ = d.SetCurvePublickey(cpub)
	_ = d.SetCurveSecretkey(csec)
	if err := d.Connect(ep); err != nil {
		t.Fatal(err)
	}
	long := bytes.Repeat([]byte("x"), 300)
	for _, m := range [][][]byte{{[]byte("")}, {{}, []byte("a"), []byte("b")}, {long, []byte("c")}} {
		if err := SendMessage(d, m); err != nil {
			t.Fatal(err)
		}
	}
	req, err := zap.RecvMessage(0)
	if err != nil || len(req) < 2 {
		t.Fatalf("ZAP request %q, %v", req, err)
	}
	if _, err := zap.SendMessage("1.0", req[1], "200", "OK", "the-user", ""); err != nil {
		t.Fatal(err)
	}
	poller := zmq.NewPoller()
	poller.Add(r, zmq.POLLIN)
	want := []struct {
		head []string
		rest []string
	}{
		{[]string{"peer", ""}, nil},
		{[]string{"peer", ""}, []string{"a", "b"}},
		{[]string{"peer", strings.Repeat("x", 256)}, []string{"c"}},
	}
	for i, w := range want {
		if _, err := poller.Poll(5 * time.Second); err != nil { // poll first: the ROUTER prefetches
			t.Fatal(err)
		}
		head, uid, more, err := RecvHead(r)
		if err != nil {
			t.Fatalf("message %d: RecvHead: %v", i, err)
		}
		if uid != "the-user" || len(head) != 2 || string(head[0]) != w.head[0] || string(head[1]) != w.head[1] || more != (w.rest != nil) {
			t.Fatalf("message %d: RecvHead = %q, %q, more %v; want %q, the-user, more %v", i, head, uid, more, w.head, w.rest != nil)
		}
		if more {
			rest, err := RecvMessage(r)
			if err != nil || len(rest) != len(w.rest) || string(rest[0]) != w.rest[0] {
				t.Fatalf("message %d: rest = %q, %v; want %q", i, rest, err, w.rest)
			}
		}
	}
	if _, _, _, err := RecvHead(r); zmq.AsErrno(err) != errAgain {
		t.Fatalf("RecvHead on an empty socket = %v, want EAGAIN", err)
	}
}
