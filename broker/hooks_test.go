package broker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/internal/gatetest"
	"github.com/gaterpc/gate/internal/wire"
)

func TestHooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	add := func(format string, args ...any) {
		mu.Lock()
		events = append(events, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var hbSent, hbRecv int
	hooks := broker.Hooks{
		OnRequest:     func(s string) { add("request %s", s) },
		OnQueued:      func(s string) { add("queued %s", s) },
		OnDispatch:    func(s string, wait time.Duration) { add("dispatch %s", s) },
		OnReply:       func(s string, k wire.ReplyKind, n int) { add("reply %s %v %d", s, k, n) },
		OnFinish:      func(s, outcome string, d time.Duration) { add("finish %s %s", s, outcome) },
		OnWorkerReady: func(s string) { add("ready %s", s) },
		OnWorkerGone:  func(s, reason string) { add("gone %s %s", s, reason) },
		OnHeartbeat: func(sent bool) {
			mu.Lock()
			if sent {
				hbSent++
			} else {
				hbRecv++
			}
			mu.Unlock()
		},
		OnDrop: func(sock, reason string) { add("drop %s/%s", sock, reason) },
	}
	h := gatetest.StartBroker(t, broker.WithHooks(hooks), broker.WithHeartbeat(time.Second))
	w := readyWorker(t, h, "H", 1)
	c := h.RawClient(t)
	c.Request("H", rid(1), call(t, "f")...)
	c.Request("H", rid(2), call(t, "f")...)
	for i := range 2 {
		req := w.NextRequest(recvTimeout)
		body := result(t, i)
		if i == 1 {
			body = []byte("\x82\xa6result\xc0\xa9exception\x93\xa1E\xa1E\xa0")
		}
		w.Reply(req.Client, req.RequestID, body)
		c.NextReply(recvTimeout)
	}
	c.Request("Gate", rid(3), call(t, "get_services")...)
	c.NextReply(recvTimeout)
	c.Send([]byte("junk"))
	// The two sockets are read in no fixed order: let the drop land first.
	waitStats(t, h, "drop", func(st broker.Stats) bool { return st.Drops["frontend/too_few_frames"] == 1 })
	w.Disconnect([]byte("bye"))
	waitStats(t, h, "gone", func(st broker.Stats) bool { return st.Workers == 0 })
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"ready H",
		"request H", "dispatch H",
		"request H", "queued H",
		"reply H single 20", "finish H ok", "dispatch H",
		"reply H single 25", "finish H error",
		"request Gate",
		"drop frontend/too_few_frames",
		"gone H disconnect",
	}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events:\n%q\nwant:\n%q", events, want)
	}
	if hbSent != 1 || hbRecv != 1 {
		t.Fatalf("heartbeats sent %d received %d, want 1 and 1", hbSent, hbRecv)
	}
}
