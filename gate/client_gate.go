package gate

import (
	"context"
	"fmt"
)

// BrokerInfo is what Gate.info reports about a broker.
type BrokerInfo struct {
	ID       []byte   `msgpack:"my_id"`    // the broker's 16-byte id
	Services []string `msgpack:"services"` // registered worker services
}

// Interface describes one method a worker exposes (get_interfaces).
type Interface struct {
	Doc       string `msgpack:"doc"`
	Signature string `msgpack:"signature"`
}

// Services calls Gate.get_services: the names of every service the broker
// knows, the internal service last.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	return CallAs[[]string](ctx, c, c.set.InternalService+".get_services")
}

// Info calls Gate.info.
func (c *Client) Info(ctx context.Context) (BrokerInfo, error) {
	return CallAs[BrokerInfo](ctx, c, c.set.InternalService+".info")
}

// QueryService calls Gate.query_service(name) and returns the service's
// description. An unknown service gives an error wrapping [ErrNoService].
// (Unlike the Python client's helper, quirk 15, the name is encoded once.)
func (c *Client) QueryService(ctx context.Context, name string) (string, error) {
	d, err := CallAs[*string](ctx, c, c.set.InternalService+".query_service", name)
	if err != nil {
		return "", err
	}
	if d == nil {
		return "", fmt.Errorf("%w: %q", ErrNoService, name)
	}
	return *d, nil
}

// Interfaces calls service.get_interfaces: the methods the service's
// workers expose, by name.
func (c *Client) Interfaces(ctx context.Context, service string) (map[string]Interface, error) {
	return CallAs[map[string]Interface](ctx, c, service+".get_interfaces")
}

// ServiceStats describes one worker service as a gate broker reports it
// through Gate.service_stats (docs/protocol.md §8 (f)). Durations are in
// seconds, as floats, so that Python clients read them as they are.
type ServiceStats struct {
	Name        string `msgpack:"name" json:"name"`
	Description string `msgpack:"description" json:"description"`
	// Capacity is the total announced capacity of the live workers.
	Capacity int `msgpack:"capacity" json:"capacity"`
	// InFlight counts requests running on its workers, Queued those
	// waiting for a worker; OldestQueuedSeconds is the age of the oldest
	// queued request (0 when none is).
	InFlight            int     `msgpack:"in_flight" json:"in_flight"`
	Queued              int     `msgpack:"queued" json:"queued"`
	OldestQueuedSeconds float64 `msgpack:"oldest_queued_s" json:"oldest_queued_s"`
	// Calls counts the service's finished requests since the broker
	// started (or since it forgot the service, see broker.WithServicePrune);
	// Errors those whose outcome was not "ok"; Outcomes splits Calls by
	// the broker's outcome names ("ok", "error" for an exception from
	// the worker, "expired", "timeout", "rejected_full", "cancelled",
	// "worker_lost", ...; broker.OutcomeOK and its siblings).
	Calls    uint64            `msgpack:"calls" json:"calls"`
	Errors   uint64            `msgpack:"errors" json:"errors"`
	Outcomes map[string]uint64 `msgpack:"outcomes" json:"outcomes"`
	// Stalled counts the workers that get no new work because they went
	// silent (docs/reliability.md); they are in Workers too.
	Stalled int           `msgpack:"stalled" json:"stalled"`
	Workers []WorkerStats `msgpack:"workers" json:"workers"`
}

// WorkerStats describes one live worker of a service (Gate.service_stats).
type WorkerStats struct {
	// ID is the worker's ZeroMQ routing id at the broker's backend.
	ID []byte `msgpack:"id" json:"id"`
	// Key is the CURVE public key (Z85, the ZAP User-Id) the worker
	// registered with; "" in plain mode or over inproc.
	Key      string `msgpack:"key" json:"key,omitempty"`
	Capacity int    `msgpack:"capacity" json:"capacity"`
	InFlight int    `msgpack:"in_flight" json:"in_flight"`
	// LastSeenSeconds is the time since the broker last heard from the
	// worker (any message: replies and heartbeats).
	LastSeenSeconds float64 `msgpack:"last_seen_s" json:"last_seen_s"`
	// Stalled: the worker went silent and gets no new work until it
	// speaks again.
	Stalled bool `msgpack:"stalled" json:"stalled"`
	// Protocol is what the worker announced: "MDPW01" (a 0.2.12 worker),
	// "gaterpc/1" or "gaterpc/2" (see docs/protocol.md §8 (b)).
	Protocol string `msgpack:"protocol" json:"protocol"`
}

// ServiceStats calls Gate.service_stats: the named services (every
// service the broker knows when no name is given; unknown names are left
// out), sorted by name. A broker without the extension (gaterpc 0.2.12)
// answers with an AttributeError [*Error] or, with SECURE=True, not at all
// (the call then ends with ctx).
func (c *Client) ServiceStats(ctx context.Context, names ...string) ([]ServiceStats, error) {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	r, err := CallAs[struct {
		Services []ServiceStats `msgpack:"services"`
	}](ctx, c, c.set.InternalService+".service_stats", args...)
	return r.Services, err
}
