package gatetest_test

import (
	"bytes"
	"net/url"
	"testing"

	"go.uber.org/goleak"

	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHarnessMatrix(t *testing.T) {
	for _, tr := range gatetest.Endpoints(t) {
		t.Run(tr.Name, func(t *testing.T) {
			h := gatetest.StartBrokerOn(t, tr)
			if h.Frontend == "" || h.Backend == "" || bytes.HasSuffix([]byte(h.Frontend), []byte(":0")) {
				t.Fatalf("endpoints %q %q", h.Frontend, h.Backend)
			}
			w := h.RawWorker(t)
			w.Ready("T", "test", 1)
			c := h.RawClient(t)
			// retry until the worker is registered (READY may still be in flight)
			var rep wire.ClientReply
			for i := 0; ; i++ {
				c.Request("T", []byte{byte(i)}, []byte("\xa1f"))
				m, err := w.NextMessage(50e6)
				if err == nil && m.Command == wire.CmdRequest {
					w.Reply(m.Client, m.RequestID, []byte("\x82\xa6result\x01\xa9exception\xc0"))
					for {
						rep = c.NextReply(gatetest.RecvTimeout)
						if bytes.Equal(rep.RequestID, m.RequestID) {
							break
						}
					}
					break
				}
				if i > 50 {
					t.Fatal("worker never got a request")
				}
			}
			if rep.Service != "T" {
				t.Fatalf("reply %+v", rep)
			}
			c.Sync()
		})
	}
}

// TestTCPTransport checks that the TCP transport's two endpoints are
// accepted by broker.New, bind two different real ports, and carry a call.
func TestTCPTransport(t *testing.T) {
	h := gatetest.StartBrokerOn(t, gatetest.TCP)
	fu, err1 := url.Parse(h.Frontend)
	bu, err2 := url.Parse(h.Backend)
	if err1 != nil || err2 != nil || fu.Scheme != "tcp" || bu.Scheme != "tcp" {
		t.Fatalf("endpoints %q %q", h.Frontend, h.Backend)
	}
	for _, u := range []*url.URL{fu, bu} {
		if p := u.Port(); p == "" || p == "0" || p == "*" {
			t.Fatalf("endpoint %q has no bound port", u)
		}
	}
	if fu.Port() == bu.Port() {
		t.Fatalf("frontend and backend share port %s", fu.Port())
	}
	w := h.RawWorker(t)
	w.Ready("T", "test", 1)
	c := h.RawClient(t)
	for i := 0; ; i++ { // READY may still be in flight
		c.Request("T", []byte{byte(i)}, []byte("\xa1f"))
		m, err := w.NextMessage(50e6)
		if err == nil && m.Command == wire.CmdRequest {
			w.Reply(m.Client, m.RequestID, []byte("\x82\xa6result\x01\xa9exception\xc0"))
			for {
				if rep := c.NextReply(gatetest.RecvTimeout); bytes.Equal(rep.RequestID, m.RequestID) {
					return
				}
			}
		}
		if i > 50 {
			t.Fatal("worker never got a request over tcp")
		}
	}
}
