package broker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// eventLog is an Observer that records the broker-level events only.
type eventLog struct {
	mu             sync.Mutex
	events         []string
	hbSent, hbRecv int
	badTime        int // events without the loop's clock
}

func (l *eventLog) Observe(*gate.Request, time.Time) broker.RequestObserver { return nil }

func (l *eventLog) Event(ev *broker.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev.Time.IsZero() {
		l.badTime++
	}
	var s string
	switch ev.Kind {
	case broker.EventHeartbeatSent:
		l.hbSent++
		return
	case broker.EventHeartbeatReceived:
		l.hbRecv++
		return
	case broker.EventReply:
		s = fmt.Sprintf("%v %s %v %d", ev.Kind, ev.Service, ev.Reply, ev.Size)
	case broker.EventFinished:
		s = fmt.Sprintf("%v %s %s", ev.Kind, ev.Service, ev.Outcome)
		if ev.Wait <= 0 {
			s += " no-duration"
		}
	case broker.EventWorkerGone:
		s = fmt.Sprintf("%v %s %s", ev.Kind, ev.Service, ev.Reason)
	case broker.EventDropped:
		s = fmt.Sprintf("%v %s/%s", ev.Kind, ev.Socket, ev.Reason)
	default:
		s = fmt.Sprintf("%v %s", ev.Kind, ev.Service)
	}
	l.events = append(l.events, s)
}

func TestEvents(t *testing.T) {
	log := &eventLog{}
	h := gatetest.StartBroker(t, broker.WithObserver(log), broker.WithHeartbeat(time.Second))
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
	log.mu.Lock()
	defer log.mu.Unlock()
	want := []string{
		"worker_ready H",
		"request H", "dispatched H",
		"request H", "queued H",
		"reply H single 20", "finished H ok", "dispatched H",
		"reply H single 25", "finished H error",
		"request Gate",
		"dropped frontend/too_few_frames",
		"worker_gone H disconnect",
	}
	if fmt.Sprint(log.events) != fmt.Sprint(want) {
		t.Fatalf("events:\n%q\nwant:\n%q", log.events, want)
	}
	if log.hbSent != 1 || log.hbRecv != 1 {
		t.Fatalf("heartbeats sent %d received %d, want 1 and 1", log.hbSent, log.hbRecv)
	}
	if log.badTime != 0 {
		t.Fatalf("%d events without a time", log.badTime)
	}
}

func TestEventKindString(t *testing.T) {
	if s := broker.EventWorkerGone.String(); s != "worker_gone" {
		t.Fatalf("EventWorkerGone = %q", s)
	}
	if s := broker.EventKind(200).String(); s != "unknown" {
		t.Fatalf("EventKind(200) = %q", s)
	}
}
