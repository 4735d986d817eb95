package gatetest

import (
	"os"
	"testing"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/zmqx"
)

// Curve is a CURVE test setup: the broker's key pair and one client and
// one worker key pair, freshly generated. The test is skipped when libzmq
// has no CURVE support.
type Curve struct {
	Server, Client, Worker gate.KeyPair
}

// NewCurve generates the key pairs of a CURVE test.
func NewCurve(t testing.TB) Curve {
	t.Helper()
	RequireCurve(t)
	var c Curve
	for _, kp := range []*gate.KeyPair{&c.Server, &c.Client, &c.Worker} {
		k, err := gate.NewKeyPair()
		if err != nil {
			t.Fatalf("gatetest: NewKeyPair: %v", err)
		}
		*kp = k
	}
	return c
}

// NewKey returns a fresh key pair (one that no allow-list holds).
func NewKey(t testing.TB) gate.KeyPair {
	t.Helper()
	k, err := gate.NewKeyPair()
	if err != nil {
		t.Fatalf("gatetest: NewKeyPair: %v", err)
	}
	return k
}

// DialCurve is Dial for a CURVE server: the DEALER authenticates with own
// and expects the server key serverPublic. A zero own dials plain.
func DialCurve(t testing.TB, zctx *zmq.Context, endpoint string, id []byte, serverPublic string, own gate.KeyPair) *RawPeer {
	t.Helper()
	s, err := zctx.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatalf("gatetest: socket: %v", err)
	}
	fail := func(what string, err error) {
		t.Helper()
		s.Close()
		t.Fatalf("gatetest: %s: %v", what, err)
	}
	if err := zmqx.Setup(s, 0, 0, id); err != nil {
		fail("socket setup", err)
	}
	if err := s.SetSndtimeo(RecvTimeout); err != nil {
		fail("socket setup", err)
	}
	if own != (gate.KeyPair{}) {
		if err := s.SetCurveServerkey(serverPublic); err != nil {
			fail("CURVE server key", err)
		}
		if err := s.SetCurvePublickey(own.Public); err != nil {
			fail("CURVE public key", err)
		}
		if err := s.SetCurveSecretkey(own.Secret); err != nil {
			fail("CURVE secret key", err)
		}
	}
	if err := s.Connect(endpoint); err != nil {
		fail("connect "+endpoint, err)
	}
	p := &RawPeer{t: t, ID: id, sock: s, poller: zmq.NewPoller()}
	p.poller.Add(s, zmq.POLLIN)
	t.Cleanup(p.Close)
	return p
}

// CurveWorker connects a raw worker to the backend with CURVE keys own.
func (h *Harness) CurveWorker(t testing.TB, serverPublic string, own gate.KeyPair) *RawWorker {
	t.Helper()
	return &RawWorker{RawPeer: DialCurve(t, h.Ctx, h.Backend, NewID("w"), serverPublic, own), AutoHeartbeat: true}
}

// CurveClient connects a raw client to the frontend with CURVE keys own
// (a zero own: plain).
func (h *Harness) CurveClient(t testing.TB, serverPublic string, own gate.KeyPair) *RawClient {
	t.Helper()
	return &RawClient{DialCurve(t, h.Ctx, h.Frontend, NewID("c"), serverPublic, own)}
}

// RequireCurve skips t when libzmq was built without CURVE (libsodium), and
// fails it instead under CI (CI set), whose Debian libzmq5 has CURVE: the
// security tests must run there.
func RequireCurve(t testing.TB) {
	t.Helper()
	if zmq.HasCurve() {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("libzmq without CURVE under CI: install Debian's libzmq3-dev (built with libsodium)")
	}
	t.Skip("libzmq without CURVE: the security tests need libzmq built with libsodium (Debian's libzmq3-dev is)")
}
