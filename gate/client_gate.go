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
