package broker

import (
	"time"

	"github.com/gaterpc/gate/internal/wire"
)

// Request outcomes passed to Hooks.OnFinish. They form a closed set fit
// for metric labels.
const (
	OutcomeOK          = "ok"            // final reply relayed, no exception marker seen
	OutcomeError       = "error"         // final reply carried a remote exception
	OutcomeExpired     = "expired"       // waited too long for a worker (BusyWorkerError)
	OutcomeTimeout     = "timeout"       // caller budget ran out while queued (TimeoutError)
	OutcomeFull        = "rejected_full" // queue full, too many handlers, client too slow or flow control violated (BusyWorkerError)
	OutcomeNoService   = "no_service"    // unknown service or no live worker (ServiceUnAvailableError)
	OutcomeCancelled   = "cancelled"     // cancelled by the client (Gate.cancel), or the client left
	OutcomeWorkerLost  = "worker_lost"   // worker died, expired or left mid-request (WorkerLostError)
	OutcomeShutdown    = "shutdown"      // refused or dropped because the broker is shutting down
	OutcomeMiddleware  = "middleware"    // middleware returned before the request was dispatched
	OutcomeInternalErr = "internal"      // broker-internal failure (e.g. the socket refused the send)
)

// Worker-gone reasons passed to Hooks.OnWorkerGone; they are also the keys
// of Stats.Expirations.
const (
	GoneHeartbeat      = "heartbeat"       // silent longer than heartbeat × liveness
	GoneDisconnect     = "disconnect"      // the worker sent DISCONNECT
	GoneDuplicateReady = "duplicate_ready" // READY from a registered id: banned
	GoneProtocol       = "protocol"        // banned for a protocol violation
	GoneShutdown       = "shutdown"        // the broker shut down
)

// Hooks are optional callbacks through which telemetry observes the
// broker. Every hook runs on the broker's socket loop goroutine, so it
// must be cheap and must not block or call back into the Broker; nil
// hooks are skipped. Service names come from the wire (unbounded); map
// them to a closed set before using them as metric labels.
type Hooks struct {
	// OnRequest is called for every valid client request (internal Gate
	// calls included) when it arrives.
	OnRequest func(service string)
	// OnQueued is called when a request has to wait for a worker.
	OnQueued func(service string)
	// OnDispatch is called when a request is sent to a worker; wait is the
	// time since it arrived.
	OnDispatch func(service string, wait time.Duration)
	// OnReply is called for every worker reply message relayed to a
	// client; size is the body size in bytes.
	OnReply func(service string, kind wire.ReplyKind, size int)
	// OnFinish is called once per worker-service request when it is
	// finished, with one of the Outcome* values and the time since it
	// arrived.
	OnFinish func(service, outcome string, dur time.Duration)
	// OnWorkerReady is called when a worker registers.
	OnWorkerReady func(service string)
	// OnWorkerGone is called when a registered worker is forgotten, with
	// one of the Gone* reasons.
	OnWorkerGone func(service, reason string)
	// OnHeartbeat is called for every HEARTBEAT sent (sent=true) or
	// received from a registered worker (sent=false).
	OnHeartbeat func(sent bool)
	// OnDrop is called for every dropped inbound message with the socket
	// ("frontend" or "backend") and the reason, as counted in Stats.Drops.
	OnDrop func(socket, reason string)
}
