package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gaterpc/gate/broker"
	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatehook"
)

// Calls to names no worker serves must not use up the service label bound
// before a real service registers.
func TestBrokerMetricsLabelOnlyServedServices(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	bm, err := NewBrokerMetrics(reg, WithMaxServices(2))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		bm.OnFinish("junk"+strings.Repeat("x", i), broker.OutcomeNoService, time.Millisecond)
	}
	bm.Event(&broker.Event{Kind: broker.EventWorkerReady, Service: "Real"})
	bm.OnFinish("Real", broker.OutcomeOK, time.Millisecond)
	bm.OnDispatch("Later", time.Millisecond) // a dispatched request admits its service too
	bm.OnFinish("Later", broker.OutcomeOK, time.Millisecond)

	if n := testutil.CollectAndCount(reg, "gaterpc_broker_request_duration_seconds"); n != 3 {
		t.Fatalf("%d duration series, want 3 (_OTHER/no_service, Real/ok, Later/ok)", n)
	}
	want := map[[2]string]uint64{
		{OtherMethod, broker.OutcomeNoService}: 100,
		{"Real", broker.OutcomeOK}:             1,
		{"Later", broker.OutcomeOK}:            1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gaterpc_broker_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var k [2]string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case labelService:
					k[0] = lp.GetValue()
				case labelOutcome:
					k[1] = lp.GetValue()
				}
			}
			if got := m.GetHistogram().GetSampleCount(); got != want[k] {
				t.Errorf("%v: %d observations, want %d", k, got, want[k])
			}
		}
	}
}

// The broker's SERVER span is named after the method only once the
// service has had a request dispatched to a worker; a request waiting for
// the first worker is renamed when it is dispatched.
func TestBrokerObserverNamesOnlyServedServices(t *testing.T) {
	sr, tp := newRecorder(t)
	obs := BrokerObserver(nil, WithTracerProvider(tp), WithPropagators(testProp), WithMaxServices(4))
	req := func(svc string) *gate.Request {
		r := &gate.Request{Service: svc, Method: "m", Body: [][]byte{[]byte("m"), []byte("args"), []byte("kw")}}
		gatehook.SetRole(r, gate.RoleBroker)
		return r
	}
	for range 10 {
		ro := obs.Observe(req("Junk"), time.Now())
		ro.Finish(time.Now(), broker.OutcomeNoService, gate.Errorf(gate.Unavailable, "no"))
	}
	// The first request of Real waits for its worker, then is dispatched.
	ro := obs.Observe(req("Real"), time.Now())
	ro.Dispatch(&broker.Dispatch{Service: "Real", Enqueued: time.Now(), Assigned: time.Now()})
	ro.Finish(time.Now(), broker.OutcomeOK, nil)
	ro = obs.Observe(req("Real"), time.Now())
	ro.Dispatch(&broker.Dispatch{Service: "Real", Enqueued: time.Now(), Assigned: time.Now()})
	ro.Finish(time.Now(), broker.OutcomeOK, nil)

	names := map[string]int{}
	for _, s := range sr.Ended() {
		if s.SpanKind().String() == "server" {
			names[s.Name()]++
		}
	}
	if names[SystemName] != 10 || names["Real/m"] != 2 || len(names) != 2 {
		t.Fatalf("server span names %v, want 10 %q and 2 \"Real/m\"", names, SystemName)
	}
}
