package broker

import "time"

// Stats is a point-in-time snapshot of the broker, taken on its loop
// goroutine by Broker.Stats. Telemetry exports it at scrape time.
type Stats struct {
	Time     time.Time
	Services []ServiceStats // sorted by name; includes services with no workers

	InFlight int // requests dispatched to workers and not finished
	Workers  int // registered live workers, all services
	Requests int // live worker-service requests: queued, assigned or in flight
	Buffered int // messages held for peers whose pipe is full (WithPeerBuffer)
	// BufferedBytes is the size of those messages, all frames counted.
	BufferedBytes int64
	// MaxClientBuffered is the most bytes one client's overflow queue has
	// held since the broker started. Under flow control it stays within
	// the client's open windows (docs/flow-control.md).
	MaxClientBuffered int64

	ServicesPruned uint64 // services forgotten after their last worker left (WithServicePrune)

	HeartbeatsSent     uint64 // broker -> worker HEARTBEATs
	HeartbeatsReceived uint64 // worker -> broker HEARTBEATs
	ClientKeepalives   uint64 // Gate.keepalive requests answered

	// Dispatch outcomes by name: "dispatched", "expired" (queue wait ran
	// out), "timeout" (caller budget ran out while queued),
	// "rejected_full" (queue full), "no_service", "cancelled",
	// "worker_lost" (worker died or expired with the request in flight),
	// "shutdown", "refused" (by the admission filter), "internal". The
	// per-request outcomes "ok" and "error" are reported only to
	// observers (RequestObserver.Finish, EventFinished).
	Outcomes map[string]uint64
	// Expirations of workers by reason: "heartbeat" (silent too long),
	// "disconnect" (worker said DISCONNECT), "duplicate_ready" (banned),
	// "protocol" (banned for a protocol violation), "shutdown" (the
	// broker closed).
	Expirations map[string]uint64
	// Drops of malformed or unwanted messages by "socket/reason", e.g.
	// "frontend/header", "backend/command", "backend/unknown_worker". The
	// reasons are the wire.ProtocolError reasons plus "oversize",
	// "duplicate_request", "unknown_worker", "unknown_request",
	// "reserved_service", "shutting_down" and "send_failed". Flow control (docs/flow-control.md):
	// "backend/flow_violation" (a worker sent beyond the reader's window:
	// the call failed), "frontend/bad_credit" (a malformed Gate.credit)
	// and "frontend/unknown_request" (a Gate.credit for no live request
	// under flow control). Outbound trouble is counted too:
	// "frontend/client_slow" (a reply not relayed because the client's
	// overflow queue was full; its requests failed), "frontend/client_gone"
	// (a client left with requests live: they were cancelled),
	// "backend/worker_slow" (a REQUEST refused because the worker's
	// overflow queue was full) and "backend/worker_gone" (a worker's
	// connection was gone; it was forgotten). Limits on input
	// (docs/reliability.md): "<socket>/too_many_frames" (WithMaxFrames),
	// "backend/ready_name_too_long", "backend/ready_description_too_long"
	// (WithReadyLimits), "backend/too_many_services" (WithMaxServices),
	// and "backend/capacity_clamped" (WithMaxCapacity: the READY was
	// accepted with the clamped capacity). "backend/unknown_worker" counts
	// messages from unregistered workers; a HEARTBEAT or REPLY among them
	// is answered with DISCONNECT, once per heartbeat interval and id.
	Drops map[string]uint64
	// AuthFailures counts peers denied by CURVE authentication (see
	// WithCurve) by "socket/reason": "frontend/unknown_key",
	// "backend/service_not_allowed", ... with the reasons of
	// AuthFailureReasons. A denied peer that keeps reconnecting is
	// counted at each attempt. Empty in plain mode.
	AuthFailures map[string]uint64
}

// ServiceStats describes one service.
type ServiceStats struct {
	Name        string
	Description string
	// Workers by state: "idle" (no request in flight), "busy" (some
	// capacity used), "full" (no capacity left).
	Workers map[string]int
	// Stalled counts the live workers (also counted in Workers) that get
	// no new work because they went silent (docs/reliability.md).
	Stalled     int
	Capacity    int           // total announced capacity of live workers
	InFlight    int           // requests running on its workers
	Queued      int           // requests waiting for a worker
	OldestQueue time.Duration // age of the oldest queued request; 0 if none
}
