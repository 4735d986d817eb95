package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

// startCurve starts a CURVE broker on tcp://127.0.0.1 admitting c.Client
// and c.Worker (the worker for the given services; none: any).
func startCurve(t *testing.T, c gatetest.Curve, services []string, opts ...broker.Option) *gatetest.Harness {
	t.Helper()
	all := append([]broker.Option{
		broker.WithCurve(c.Server.Secret),
		broker.WithClientKeys(c.Client.Public),
		broker.WithWorkerKeys(broker.AuthorizedKey{Key: c.Worker.Public, Services: services}),
		broker.WithLiveness(50), // raw workers do not answer heartbeats while a test waits
	}, opts...)
	return gatetest.StartBrokerOn(t, gatetest.TCP, all...)
}

// waitAuthFailure waits until one of keys ("socket/reason") is counted.
func waitAuthFailure(t *testing.T, h *gatetest.Harness, keys ...string) broker.Stats {
	t.Helper()
	return waitStats(t, h, "auth failure "+strings.Join(keys, " or "), func(s broker.Stats) bool {
		for _, k := range keys {
			if s.AuthFailures[k] > 0 {
				return true
			}
		}
		return false
	})
}

// A plain peer on a CURVE socket is counted as "mechanism", or as
// "handshake" when it hangs up before the broker has read its greeting.
var plainFrontend = []string{"frontend/mechanism", "frontend/handshake"}

// TestCurveRawRoundTrip: a listed worker registers and a listed client's
// request reaches it and its reply comes back, over CURVE.
func TestCurveRawRoundTrip(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := startCurve(t, c, nil)
	w := h.CurveWorker(t, c.Server.Public, c.Worker)
	w.Ready("Echo", "echo", 1)
	waitStats(t, h, "worker registered", func(s broker.Stats) bool { return s.Workers == 1 })
	cl := h.CurveClient(t, c.Server.Public, c.Client)
	cl.Request("Echo", rid(1), call(t, "echo", "secret")...)
	req := w.NextRequest(recvTimeout)
	w.Reply(req.Client, req.RequestID, result(t, "secret"))
	rep := cl.NextReply(recvTimeout)
	if string(rep.RequestID) != string(rid(1)) || string(rep.Body[0]) != string(result(t, "secret")) {
		t.Fatalf("reply = %s, want the worker's reply", gatetest.Dump(rep.Body))
	}
	if st := stats(h); len(st.AuthFailures) != 0 {
		t.Fatalf("AuthFailures = %v, want none", st.AuthFailures)
	}
}

// TestCurveUnlistedWorker: a worker whose key is not listed never
// registers and never sees a request; callers get ServiceUnAvailable.
func TestCurveUnlistedWorker(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := startCurve(t, c, nil)
	rogue := h.CurveWorker(t, c.Server.Public, gatetest.NewKey(t))
	rogue.Ready("Echo", "forged", 5000)
	waitAuthFailure(t, h, "backend/unknown_key")

	cl := h.CurveClient(t, c.Server.Public, c.Client)
	cl.Request("Echo", rid(1), call(t, "echo", "password=hunter2")...)
	// The no-service answer proves the request went to no worker, and the
	// broker never had a connection to the rogue to send it anything on:
	// its handshake was refused. ExpectEmpty only reports a message that
	// got through anyway.
	wantException(t, cl.NextReply(recvTimeout), "ServiceUnAvailableError", "")
	rogue.ExpectEmpty()
	if st := stats(h); st.Workers != 0 || st.Outcomes[broker.OutcomeNoService] != 1 {
		t.Fatalf("Workers = %d, no_service = %d; want 0 and 1", st.Workers, st.Outcomes[broker.OutcomeNoService])
	}
}

// TestCurvePlainWorker: a plain worker cannot reach a CURVE backend.
func TestCurvePlainWorker(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := startCurve(t, c, nil)
	rogue := h.RawWorker(t)
	rogue.Ready("Echo", "forged", 1)
	waitAuthFailure(t, h, "backend/mechanism", "backend/handshake")
	if n := stats(h).Workers; n != 0 {
		t.Fatalf("Workers = %d, want 0", n)
	}
	// A listed worker that registers after the refusal gets the first
	// request for Echo: had the rogue registered, it would be the older
	// idle worker and be sent the request first.
	w := h.CurveWorker(t, c.Server.Public, c.Worker)
	w.Ready("Echo", "echo", 1)
	waitStats(t, h, "worker registered", func(s broker.Stats) bool { return s.Workers == 1 })
	cl := h.CurveClient(t, c.Server.Public, c.Client)
	cl.Request("Echo", rid(1), call(t, "echo")...)
	req := w.NextRequest(recvTimeout)
	w.Reply(req.Client, req.RequestID, result(t, "ok"))
	if rep := cl.NextReply(recvTimeout); string(rep.RequestID) != string(rid(1)) {
		t.Fatalf("reply for %q, want %q", rep.RequestID, rid(1))
	}
	rogue.ExpectEmpty() // the broker never had a connection to it
}

// TestCurveWorkerServiceRestriction: a key allowed for A registers for A
// but its READY for B is refused with DISCONNECT and counted.
func TestCurveWorkerServiceRestriction(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := startCurve(t, c, []string{"A"})

	b := h.CurveWorker(t, c.Server.Public, c.Worker)
	b.Ready("B", "not mine", 1)
	m, err := b.NextMessage(recvTimeout)
	if err != nil || m.Command != wire.CmdDisconnect {
		t.Fatalf("after READY B got %v, %v; want DISCONNECT", m.Command, err)
	}
	st := stats(h)
	if st.AuthFailures["backend/service_not_allowed"] != 1 || st.Drops["backend/service_not_allowed"] != 1 {
		t.Fatalf("AuthFailures = %v, Drops = %v; want one backend/service_not_allowed each", st.AuthFailures, st.Drops)
	}

	cl := h.CurveClient(t, c.Server.Public, c.Client)
	cl.Request("B", rid(1), call(t, "echo")...)
	wantException(t, cl.NextReply(recvTimeout), "ServiceUnAvailableError", "")

	a := h.CurveWorker(t, c.Server.Public, c.Worker)
	a.Ready("A", "mine", 1)
	waitStats(t, h, "worker A registered", func(s broker.Stats) bool { return s.Workers == 1 })
	cl.Request("A", rid(2), call(t, "echo")...)
	req := a.NextRequest(recvTimeout)
	a.Reply(req.Client, req.RequestID, result(t, "ok"))
	if rep := cl.NextReply(recvTimeout); string(rep.RequestID) != string(rid(2)) {
		t.Fatalf("reply for %q, want %q", rep.RequestID, rid(2))
	}
}

// TestCurveClientDenied: a plain client, an unlisted client and a client
// with the wrong server key get nothing, each counted by reason.
func TestCurveClientDenied(t *testing.T) {
	c := gatetest.NewCurve(t)
	tests := []struct {
		name    string
		server  string
		own     func(t *testing.T) gate.KeyPair
		reasons []string
	}{
		{"plain", "", func(*testing.T) gate.KeyPair { return gate.KeyPair{} }, plainFrontend},
		{"unlisted", c.Server.Public, func(t *testing.T) gate.KeyPair { return gatetest.NewKey(t) }, []string{"frontend/unknown_key"}},
		{"wrong_server_key", gatetest.NewKey(t).Public, func(*testing.T) gate.KeyPair { return c.Client }, []string{"frontend/crypto"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startCurve(t, c, nil)
			w := h.CurveWorker(t, c.Server.Public, c.Worker)
			w.Ready("Echo", "echo", 1)
			waitStats(t, h, "worker registered", func(s broker.Stats) bool { return s.Workers == 1 })

			cl := h.CurveClient(t, tt.server, tt.own(t))
			cl.Request("Echo", rid(1), call(t, "echo")...)
			waitAuthFailure(t, h, tt.reasons...)
			// The refused client's request never reached the broker: the
			// worker's first request is a listed client's probe, and the
			// broker dispatched that one request only.
			probe := h.CurveClient(t, c.Server.Public, c.Client)
			probe.Request("Echo", rid(2), call(t, "echo")...)
			req := w.NextRequest(recvTimeout)
			if string(req.RequestID) != string(rid(2)) {
				t.Fatalf("worker got request %q, want the probe %q", req.RequestID, rid(2))
			}
			w.Reply(req.Client, req.RequestID, result(t, "ok"))
			probe.NextReply(recvTimeout)
			cl.ExpectEmpty() // it never completed a handshake
			if n := stats(h).Outcomes["dispatched"]; n != 1 {
				t.Fatalf("dispatched = %d, want 1 (the probe)", n)
			}
		})
	}
}

// TestCurveOptions: invalid combinations are refused by New.
func TestCurveOptions(t *testing.T) {
	c := gatetest.NewCurve(t)
	tests := []struct {
		name string
		opts []broker.Option
		want string
	}{
		{"no client list", []broker.Option{broker.WithCurve(c.Server.Secret), broker.WithWorkerKeys(broker.AuthorizedKey{Key: broker.AnyKey})}, "WithClientKeys"},
		{"no worker list", []broker.Option{broker.WithCurve(c.Server.Secret), broker.WithClientKeys(broker.AnyKey)}, "WithWorkerKeys"},
		{"lists without curve", []broker.Option{broker.WithClientKeys(c.Client.Public)}, "without WithCurve"},
		{"bad secret", []broker.Option{broker.WithCurve("short")}, "5 characters"},
		{"bad client key", []broker.Option{broker.WithCurve(c.Server.Secret), broker.WithClientKeys(strings.Repeat("~", 40))}, "Z85 alphabet"},
		{"bad service", []broker.Option{broker.WithCurve(c.Server.Secret), broker.WithWorkerKeys(broker.AuthorizedKey{Key: c.Worker.Public, Services: []string{"a:b"}})}, "bad service"},
		{"sockets before curve", []broker.Option{broker.WithCurveSockets(false, true)}, "before WithCurve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := broker.New(tt.opts...)
			if !errors.Is(err, gate.ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want ErrInvalidOption mentioning %q", err, tt.want)
			}
		})
	}
}

// TestCurvePlainFrontend: with WithCurveSockets(false, true) plain
// clients are served while workers still need a listed key.
func TestCurvePlainFrontend(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := gatetest.StartBrokerOn(t, gatetest.TCP,
		broker.WithCurve(c.Server.Secret), broker.WithCurveSockets(false, true),
		broker.WithWorkerKeys(broker.AuthorizedKey{Key: c.Worker.Public}))
	w := h.CurveWorker(t, c.Server.Public, c.Worker)
	w.Ready("Echo", "echo", 1)
	waitStats(t, h, "worker registered", func(s broker.Stats) bool { return s.Workers == 1 })
	cl := h.RawClient(t)
	cl.Request("Echo", rid(1), call(t, "echo")...)
	req := w.NextRequest(recvTimeout)
	w.Reply(req.Client, req.RequestID, result(t, 1))
	cl.NextReply(recvTimeout)
}

// TestCurveSharedContext: a second CURVE broker in the same ZeroMQ
// context fails with a clear error (one ZAP handler per context).
func TestCurveSharedContext(t *testing.T) {
	c := gatetest.NewCurve(t)
	h := startCurve(t, c, nil)
	b, err := broker.New(broker.WithZMQContext(h.Ctx), broker.WithFrontend("tcp://127.0.0.1:*"), broker.WithBackend("tcp://127.0.0.1:*"),
		broker.WithCurve(c.Server.Secret), broker.WithClientKeys(broker.AnyKey), broker.WithWorkerKeys(broker.AuthorizedKey{Key: broker.AnyKey}),
		broker.WithLogger(gatetest.TestLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatetest.TestTimeout)
	defer cancel()
	err = b.Serve(ctx)
	if err == nil || !strings.Contains(err.Error(), broker.ZAPEndpoint) {
		t.Fatalf("Serve = %v, want an error naming %s", err, broker.ZAPEndpoint)
	}
}

func TestParseKeyList(t *testing.T) {
	c := gatetest.NewCurve(t)
	good := "# workers\n\n" + c.Worker.Public + " A,B\n" + c.Client.Public + "\n*  Log\n"
	keys, err := broker.ParseKeyList(strings.NewReader(good))
	if err != nil {
		t.Fatalf("ParseKeyList: %v", err)
	}
	if len(keys) != 3 || keys[0].Key != c.Worker.Public || strings.Join(keys[0].Services, ",") != "A,B" ||
		keys[1].Services != nil || keys[2].Key != broker.AnyKey || keys[2].Services[0] != "Log" {
		t.Fatalf("ParseKeyList = %+v", keys)
	}
	bad := []struct{ text, want string }{
		{c.Worker.Public + " A B", "line 1"},
		{"\n" + c.Worker.Public[:39], "line 2"},
		{c.Worker.Public + " A,,B", "bad service"},
		{c.Worker.Public + " A:x", "bad service"},
	}
	for _, b := range bad {
		if _, err := broker.ParseKeyList(strings.NewReader(b.text)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseKeyList(%q) = %v, want error mentioning %q", b.text, err, b.want)
		}
	}
}
