package broker

import (
	"sort"
	"strconv"

	"github.com/gaterpc/gate/gate"
	"github.com/gaterpc/gate/internal/codec"
	"github.com/gaterpc/gate/internal/gatehook"
	"github.com/gaterpc/gate/internal/pystr"
	"github.com/gaterpc/gate/internal/wire"
)

// internal serves the broker's own service "Gate" (docs/wire-protocol.md 8.1)
// on the loop. Unlike gaterpc 0.2.12 (quirk 1) an unknown function or a
// malformed body gets an exception reply instead of silence.
func (l *loop) internal(client []byte, cr wire.ClientRequest) {
	reply := func(body []byte) {
		l.toClient(client, frameGate, cr.RequestID, [][]byte{body}, true)
	}
	typeErr := func(msg string) {
		reply(codec.ExceptionMap("TypeError", "TypeError("+pyRepr(msg)+")", ""))
	}
	body := cr.Body
	if len(body) == 0 || len(body) > 3 {
		typeErr("malformed request: " + strconv.Itoa(len(body)) + " body frames, want 1 to 3")
		return
	}
	fnb, isStr, rest, err := codec.ReadStrOrBin(body[0])
	if err != nil || !isStr || len(rest) != 0 {
		typeErr("malformed request: function name is not a msgpack str")
		return
	}
	fn := string(fnb)
	nargs, args := 0, []byte(nil)
	if len(body) >= 2 {
		if nargs, args, err = codec.ReadArrayHeader(body[1]); err != nil {
			typeErr("malformed request: args is not a msgpack array")
			return
		}
	}
	oneArg := func() (v []byte, isStr, ok bool) {
		if nargs != 1 {
			typeErr(fn + "() takes 1 positional argument but " + strconv.Itoa(nargs) + " were given")
			return nil, false, false
		}
		v, isStr, _, err := codec.ReadStrOrBin(args)
		if err != nil {
			return nil, false, true // some other type: the function decides
		}
		return v, isStr, true
	}
	if l.internalExt(fn, nargs, args, reply, typeErr) { // services.go
		return
	}
	switch fn {
	case "get_services":
		names := append(append(make([]string, 0, len(l.order)+1), l.order...), wire.InternalService)
		reply(codec.ResultMap(codec.AppendStrArray(nil, names)))
	case "query_service":
		v, isStr, ok := oneArg()
		if !ok {
			return
		}
		if s := l.services[string(v)]; isStr && s != nil {
			reply(codec.ResultMap(codec.AppendStr(nil, s.desc)))
			return
		}
		reply(codec.ResultMap([]byte{0xc0}))
	case "info":
		b := []byte{0x82}
		b = codec.AppendStr(b, "my_id")
		b = codec.AppendBin(b, l.b.id)
		b = codec.AppendStr(b, "services")
		b = codec.AppendStrArray(b, l.order)
		reply(codec.ResultMap(b))
	case "keepalive":
		v, isStr, ok := oneArg()
		if !ok {
			return
		}
		l.keepalives++
		if !isStr && v != nil && string(v) == "heartbeat" {
			reply(codec.ResultMap(codec.AppendBin(nil, []byte("200"))))
			return
		}
		reply(codec.ResultMap(codec.AppendBin(nil, []byte("400"))))
	case wire.CreditFunction:
		l.credit(client, nargs, args) // one-way: never answered
	case "cancel":

		v, _, ok := oneArg()
		if !ok {
			return
		}
		if l.cancel(client, v) {
			reply(codec.ResultMap([]byte{0xc3}))
		} else {
			reply(codec.ResultMap([]byte{0xc2}))
		}
	default:
		reply(codec.ExceptionMap("AttributeError", "AttributeError("+pyRepr("Function not found: "+fn)+")", ""))
	}
}

// cancel is the gate extension Gate.cancel(request_id): the calling client
// cancels one of its own requests (by its full or base request id). A
// queued request is dropped silently; a request in flight on a worker that
// announced wire.GateCapability is cancelled there (later replies are
// dropped; the worker's capacity comes back with its final reply, or at
// once from a worker without wire.GateCapabilityAck). A request in flight
// on any other worker cannot be stopped and is left alone. It reports
// whether the request was cancelled.
func (l *loop) cancel(client, rid []byte) bool {
	base, _, err := wire.DecodeRequestID(rid)
	if err != nil {
		base = rid
	}
	r := l.reqs[string(l.key(client, base))]
	if r == nil {
		return false
	}
	switch r.state {
	case stQueued:
	case stInFlight:
		if !r.worker.gate {
			return false
		}
		if l.cancelOnWorker(r) {
			l.finish(r, OutcomeCancelled, nil, gate.Errorf(gate.Canceled, "cancelled by the client"))
			l.detach(r)
			return true
		}
	default:
		return false
	}
	l.finish(r, OutcomeCancelled, nil, gate.Errorf(gate.Canceled, "cancelled by the client"))
	return true
}

// errorFor turns a broker-generated exception into the *gate.Error an
// observer sees as the request's outcome (RequestObserver.Finish). Its code is the one
// clients derive from the class: WorkerLostError and
// ServiceUnAvailableError are Unavailable, BusyWorkerError is
// ResourceExhausted, TimeoutError is DeadlineExceeded.
func errorFor(class, repr string) error {
	return gatehook.NewError(class, repr, "")
}

// pyRepr renders s like Python's repr of a str.
func pyRepr(s string) string { return pystr.Repr(s) }

func sortedNames(m map[string]*service) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// methodName decodes body frame 0 as a msgpack str; "" if it is not one.
func methodName(body [][]byte) string {
	if len(body) == 0 {
		return ""
	}
	v, isStr, rest, err := codec.ReadStrOrBin(body[0])
	if err != nil || !isStr || len(rest) != 0 {
		return ""
	}
	return string(v)
}
