package broker

import (
	"context"
	"log/slog"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/gaterpc/gate/internal/wire"
	"github.com/gaterpc/gate/internal/zmqx"
)

// Defaults of the limits on untrusted input (docs/reliability.md).
const (
	// DefaultMaxFrames bounds the frames of one inbound message. The
	// protocol's longest message has 10 (a REQUEST to a worker); the
	// margin leaves room for in-band credential frames.
	DefaultMaxFrames = 64
	// DefaultMaxServiceName and DefaultMaxDescription bound, in bytes,
	// the service name and the description a worker announces in READY.
	DefaultMaxServiceName = 255
	DefaultMaxDescription = 1024
	// DefaultMaxCapacity is the most capacity one worker can announce;
	// a READY with more is accepted with this much.
	DefaultMaxCapacity = 100000
	// DefaultMaxServices bounds the services the broker knows (with or
	// without live workers), and so the size of the get_services reply.
	DefaultMaxServices = 1024
	// DefaultServicePrune is how long a service whose last worker left
	// is kept (listed by get_services, reported by Stats) before it is
	// forgotten.
	DefaultServicePrune = 5 * time.Minute
)

// limits holds the settings of this file; options carries one.
type limits struct {
	maxFrames    int
	maxName      int
	maxDesc      int
	maxCapacity  int
	maxServices  int
	servicePrune time.Duration // <0: never
}

func defaultLimits() limits {
	return limits{
		maxFrames:    DefaultMaxFrames,
		maxName:      DefaultMaxServiceName,
		maxDesc:      DefaultMaxDescription,
		maxCapacity:  DefaultMaxCapacity,
		maxServices:  DefaultMaxServices,
		servicePrune: DefaultServicePrune,
	}
}

// recvLimits are the limits RecvMessageLimit checks as frames arrive.
func (o *options) recvLimits() zmqx.Limits {
	lim := zmqx.Limits{MaxFrames: o.limits.maxFrames}
	if o.maxMsgSize > 0 {
		lim.MaxBytes = o.maxMsgSize
	}
	return lim
}

// WithMaxFrames bounds the frames of one inbound message (default
// DefaultMaxFrames). The count is checked as frames arrive: a longer
// message is discarded inside libzmq without being copied and counted as
// "<socket>/too_many_frames". Zero keeps the default; -1 means unlimited.
func WithMaxFrames(n int) Option {
	return optionFunc(func(o *options) error {
		switch {
		case n < -1:
			return invalid("max frames %d < -1", n)
		case n == -1:
			o.limits.maxFrames = 0
		case n > 0:
			if n < 8 {
				return invalid("max frames %d: the protocol needs at least 8", n)
			}
			o.limits.maxFrames = n
		}
		return nil
	})
}

// WithReadyLimits bounds the service name and the description, in bytes,
// that a worker may announce in READY (defaults DefaultMaxServiceName and
// DefaultMaxDescription). A READY beyond them is refused: the worker gets
// DISCONNECT and the drop is counted as "backend/ready_name_too_long" or
// "backend/ready_description_too_long". Zero keeps a default.
func WithReadyLimits(name, description int) Option {
	return optionFunc(func(o *options) error {
		if name < 0 || description < 0 {
			return invalid("READY limits %d, %d < 0", name, description)
		}
		if name > 0 {
			o.limits.maxName = name
		}
		if description > 0 {
			o.limits.maxDesc = description
		}
		return nil
	})
}

// WithMaxCapacity clamps the capacity one worker may announce (default
// DefaultMaxCapacity); a READY with more is accepted with n and counted as
// "backend/capacity_clamped". Zero keeps the default.
func WithMaxCapacity(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 {
			return invalid("max capacity %d < 0", n)
		}
		if n > 0 {
			o.limits.maxCapacity = n
		}
		return nil
	})
}

// WithMaxServices bounds the services the broker knows (default
// DefaultMaxServices). A READY for a new service beyond it is refused
// (DISCONNECT, "backend/too_many_services"). Zero keeps the default.
func WithMaxServices(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 {
			return invalid("max services %d < 0", n)
		}
		if n > 0 {
			o.limits.maxServices = n
		}
		return nil
	})
}

// WithServicePrune sets how long a service whose last worker left is kept
// before the broker forgets it (default DefaultServicePrune); until then
// get_services lists it and Stats reports it with no workers. Requests
// for it fail with ServiceUnAvailableError either way. Zero keeps the
// default; a negative d keeps services forever (gaterpc 0.2.12).
func WithServicePrune(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d < 0 {
			o.limits.servicePrune = -1
		} else if d > 0 {
			o.limits.servicePrune = d
		}
		return nil
	})
}

// limitReason names the drop reason of a receive refused by zmqx's limits
// ("" for any other error).
func limitReason(err error) string {
	switch err {
	case zmqx.ErrTooManyFrames:
		return "too_many_frames"
	case zmqx.ErrTooLarge:
		return "oversize"
	}
	return ""
}

func (l *loop) socketName(s *zmq.Socket) string { return socketName(s == l.front) }

// refuseReady names the reason a READY is refused for its text ("" if it
// is accepted).
func (l *loop) refuseReady(m wire.WorkerMessage) string {
	switch {
	case len(m.Service) > l.opts.limits.maxName:
		return "ready_name_too_long"
	case len(m.Description) > l.opts.limits.maxDesc:
		return "ready_description_too_long"
	}
	return ""
}

// roomForService reports whether a new service may be added, forgetting
// the service that has been without workers the longest if the registry
// is full.
func (l *loop) roomForService() bool {
	if len(l.services) < l.opts.limits.maxServices {
		return true
	}
	var oldest *service
	for _, s := range l.services {
		if s.workers == 0 && (oldest == nil || s.emptySince.Before(oldest.emptySince)) {
			oldest = s
		}
	}
	if oldest == nil {
		return false
	}
	l.forgetService(oldest)
	return true
}

// pruneServices forgets the services whose last worker left more than
// the prune delay ago (WithServicePrune).
func (l *loop) pruneServices() {
	d := l.opts.limits.servicePrune
	if d < 0 {
		return
	}
	var old []*service
	for _, s := range l.services {
		if s.workers == 0 && !s.emptySince.IsZero() && l.now.Sub(s.emptySince) >= d {
			old = append(old, s)
		}
	}
	for _, s := range old {
		l.forgetService(s)
	}
}

// forgetService removes a service without workers from the registry. Its
// queue is empty (the last worker's departure failed it).
func (l *loop) forgetService(s *service) {
	delete(l.services, s.name)
	for i, n := range l.order {
		if n == s.name {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
	clear(s.queue)
	s.queue, s.qhead, s.ring = nil, 0, nil
	l.pruned++
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "service forgotten",
		slog.String("gaterpc.service", s.name), slog.Duration("without_workers", l.now.Sub(s.emptySince)))
}

// silent reports whether w should get no new work: it has been silent for
// more than a heartbeat interval and has not answered the HEARTBEAT probe
// sent since within half an interval (or its pipe is full). A healthy idle
// worker answers the probe at once; a frozen one (SIGSTOP, a blocked
// event loop) stops getting requests about 1.5 intervals after it went
// quiet instead of for its whole liveness window (docs/reliability.md).
func (l *loop) silent(w *worker) bool {
	hb := l.opts.heartbeat
	if l.now.Sub(w.lastRecv) <= hb {
		return false
	}
	return w.q != nil || (w.lastHB.After(w.lastRecv) && l.now.Sub(w.lastHB) >= hb/2)
}

// unstall puts a worker that spoke again back into rotation.
func (l *loop) unstall(w *worker) {
	w.stalled = false
	if w.dead {
		return
	}
	l.ringPush(w)
	if w.svc.nq > 0 {
		l.dispatchQueued(w.svc)
	}
}

// unknownWorker answers a message from a worker the broker does not know
// (other than READY) with DISCONNECT, as MDP says, so that a worker of a
// restarted broker, or one that was expired, registers again at once
// instead of waiting out its own liveness timer.
//
// A routing id is told once per heartbeat interval: messages it sent
// before it read the DISCONNECT (a heartbeat answer, a late reply) are
// only dropped. Otherwise a worker that registers again under the same id
// at once (0.2.12 with _reconnect) would be told DISCONNECT for its own
// stale messages after it registered again, and bounce on and on.
func (l *loop) unknownWorker(id []byte) {
	l.drop("backend", "unknown_worker")
	if t, ok := l.told[string(id)]; ok && l.now.Sub(t) < l.opts.heartbeat {
		return
	}
	l.disconnect(id)
}

// maxTold bounds the routing ids remembered by noteDisconnect.
const maxTold = 4096

// noteDisconnect records that id was just sent DISCONNECT.
func (l *loop) noteDisconnect(id []byte) {
	if l.told == nil {
		l.told = make(map[string]time.Time)
	}
	if _, ok := l.told[string(id)]; ok || len(l.told) < maxTold {
		l.told[string(id)] = l.now
	}
}

func (l *loop) pruneTold() {
	for k, t := range l.told {
		if l.now.Sub(t) >= l.opts.heartbeat {
			delete(l.told, k)
		}
	}
}
