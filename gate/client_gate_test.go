package gate_test

import (
	"testing"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/gatetest"
)

// TestClientServiceStatsAndGateInterfaces: Client.ServiceStats decodes
// Gate.service_stats from a real broker (the worker's identity, the calls
// and errors it served), and Interfaces works for the internal service.
func TestClientServiceStatsAndGateInterfaces(t *testing.T) {
	env := clNewEnv(t, gatetest.Inproc)
	c := env.c
	ctx := clCtx(t)
	before, err := c.ServiceStats(ctx, "E2E")
	if err != nil || len(before) != 1 {
		t.Fatalf("ServiceStats(E2E) = %+v, %v", before, err)
	}
	b := before[0]
	if _, err := c.Call(ctx, "E2E.echo", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "E2E.fail", "x"); gate.CodeOf(err) != gate.InvalidArgument {
		t.Fatalf("fail = %v", err)
	}
	all, err := c.ServiceStats(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("ServiceStats() = %+v, %v; want E2E", all, err)
	}
	s := all[0]
	if s.Name != "E2E" || s.Description != "client end-to-end tests" || s.Calls != b.Calls+2 || s.Errors != b.Errors+1 ||
		s.Outcomes["ok"] != b.Outcomes["ok"]+1 || s.Outcomes["error"] != b.Outcomes["error"]+1 || s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("ServiceStats()[0] = %+v, want E2E with 2 more calls, 1 more error than %+v", s, b)
	}
	if len(s.Workers) != 1 || len(s.Workers[0].ID) == 0 || s.Workers[0].Capacity != s.Capacity || s.Workers[0].Protocol == "" {
		t.Fatalf("E2E workers = %+v, want one with an id and the service's capacity", s.Workers)
	}
	if none, err := c.ServiceStats(ctx, "Nope"); err != nil || len(none) != 0 {
		t.Fatalf("ServiceStats(Nope) = %+v, %v; want none", none, err)
	}
	ifs, err := c.Interfaces(ctx, "Gate")
	if err != nil || ifs["service_stats"].Signature == "" || ifs["cancel"].Doc == "" {
		t.Fatalf("Interfaces(Gate) = %v, %v", ifs, err)
	}
}
