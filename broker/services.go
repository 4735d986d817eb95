package broker

import (
	"slices"
	"strconv"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/wire"
)

// The internal service's gate extensions for operators (docs/protocol.md
// §8 (f)): Gate.service_stats and Gate.get_interfaces. A 0.2.12 broker
// answers neither (AttributeError, or silence with SECURE=True); clients
// fall back to get_services and query_service.

// gateInterfaces are the functions of the internal service, as
// Gate.get_interfaces reports them (the shape of a worker's
// get_interfaces: {name: {"doc": str, "signature": str}}).
var gateInterfaces = map[string]gate.Interface{
	"get_services":   {Signature: "() -> list[str]", Doc: "Names of the services the broker knows, the internal service last."},
	"query_service":  {Signature: "(name: str) -> str | None", Doc: "The description a service's workers announced, or None."},
	"info":           {Signature: "() -> {my_id: bytes, services: list[str]}", Doc: "The broker's id and its worker services."},
	"keepalive":      {Signature: "(b'heartbeat') -> b'200'", Doc: "Liveness probe (gate-broker health)."},
	"cancel":         {Signature: "(request_id: bytes) -> bool", Doc: "gate extension: cancel one of the caller's own requests."},
	"service_stats":  {Signature: "(*names: str) -> {services: list[dict]}", Doc: "gate extension: per service its workers, capacity, in flight, queued, oldest queued age, calls and errors; all services without names."},
	"get_interfaces": {Signature: "() -> dict", Doc: "gate extension: the internal service's functions: {name: {doc, signature}}."},
}

// callCounts are the finished requests of one service by outcome.
type callCounts struct {
	calls, errors uint64
	outcomes      map[string]uint64
}

// countCall records a finished request of a registered service (calls to
// names no worker ever served are not kept: the map stays bounded by the
// services the broker knows). Counts of services forgotten by
// WithServicePrune are dropped once the map outgrows the live services.
func (l *loop) countCall(svc, outcome string) {
	if l.services[svc] == nil {
		return
	}
	if l.svcCalls == nil {
		l.svcCalls = make(map[string]*callCounts)
	}
	c := l.svcCalls[svc]
	if c == nil {
		if len(l.svcCalls) > 2*len(l.services)+64 {
			for n := range l.svcCalls {
				if l.services[n] == nil {
					delete(l.svcCalls, n)
				}
			}
		}
		c = &callCounts{outcomes: make(map[string]uint64)}
		l.svcCalls[svc] = c
	}
	c.calls++
	if outcome != OutcomeOK {
		c.errors++
	}
	c.outcomes[outcome]++
}

// internalExt serves the operator extensions of the internal service; it
// reports false for any other function (the caller then answers it).
// args holds the nargs positional arguments, msgpack-encoded back to back.
func (l *loop) internalExt(fn string, nargs int, args []byte, reply func([]byte), typeErr func(string)) bool {
	switch fn {
	case "get_interfaces":
		if nargs != 0 {
			typeErr(fn + "() takes 0 positional arguments but " + strconv.Itoa(nargs) + " were given")
			return true
		}
		b, err := codec.Marshal(gateInterfaces)
		if err != nil {
			reply(codec.ExceptionMap("RuntimeError", "RuntimeError("+pyRepr(err.Error())+")", ""))
			return true
		}
		reply(codec.ResultMap(b))
	case "service_stats":
		var names []string
		for i := 0; i < nargs; i++ {
			v, isStr, rest, err := codec.ReadStrOrBin(args)
			if err != nil || !isStr {
				typeErr(fn + "() arguments must be service names (str)")
				return true
			}
			names, args = append(names, string(v)), rest
		}
		b, err := codec.Marshal(map[string]any{"services": l.serviceStats(names)})
		if err != nil {
			reply(codec.ExceptionMap("RuntimeError", "RuntimeError("+pyRepr(err.Error())+")", ""))
			return true
		}
		reply(codec.ResultMap(b))
	default:
		return false
	}
	return true
}

// serviceStats describes the named services (every known service when
// names is empty; unknown names are left out), sorted by name.
func (l *loop) serviceStats(names []string) []gate.ServiceStats {
	if len(names) == 0 {
		names = sortedNames(l.services)
	} else {
		names = slices.Compact(slices.Sorted(slices.Values(names)))
	}
	out := make([]gate.ServiceStats, 0, len(names))
	idx := make(map[*service]int, len(names))
	for _, name := range names {
		s := l.services[name]
		if s == nil {
			continue
		}
		ss := gate.ServiceStats{
			Name:        s.name,
			Description: s.desc,
			Capacity:    s.capacity,
			InFlight:    s.inflight,
			Queued:      s.nq,
			Workers:     []gate.WorkerStats{},
			Outcomes:    map[string]uint64{},
		}
		for _, r := range s.queue[s.qhead:] {
			if r.state == stQueued {
				ss.OldestQueuedSeconds = l.now.Sub(r.arrived).Seconds()
				break
			}
		}
		if c := l.svcCalls[name]; c != nil {
			ss.Calls, ss.Errors = c.calls, c.errors
			for k, v := range c.outcomes {
				ss.Outcomes[k] = v
			}
		}
		idx[s] = len(out)
		out = append(out, ss)
	}
	for _, w := range l.workers {
		i, ok := idx[w.svc]
		if !ok {
			continue
		}
		ws := gate.WorkerStats{
			ID:              w.id,
			Capacity:        w.capacity,
			InFlight:        w.used,
			LastSeenSeconds: max(l.now.Sub(w.lastRecv).Seconds(), 0),
			Stalled:         l.silent(w),
			Protocol:        "MDPW01",
		}
		switch {
		case w.batch:
			ws.Protocol = wire.GateCapabilityBatch
		case w.flow:
			ws.Protocol = wire.GateCapabilityFlow
		case w.ack:
			ws.Protocol = wire.GateCapabilityAck
		case w.gate:
			ws.Protocol = wire.GateCapability
		}
		if l.sec != nil {
			ws.Key = l.sec.keys[w.key]
		}
		if ws.Stalled {
			out[i].Stalled++
		}
		out[i].Workers = append(out[i].Workers, ws)
	}
	for i := range out {
		slices.SortFunc(out[i].Workers, func(a, b gate.WorkerStats) int { return slices.Compare(a.ID, b.ID) })
	}
	return out
}
