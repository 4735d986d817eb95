package gate

import "context"

// Caller is what [CallAs] and [StreamAs] call through: a [*Client], whose
// method names may carry the service ("Calc.add"), or a [ServiceClient],
// whose method names are the service's own ("add"). Write helpers against
// Caller to accept both. Only this package implements it.
type Caller interface {
	Call(ctx context.Context, method string, args ...any) (any, error)
	Stream(ctx context.Context, method string, args ...any) (*Stream, error)
	// target resolves method to the client and the service and function
	// names the request carries.
	target(method string) (c *Client, service, fn string)
}

var (
	_ Caller = (*Client)(nil)
	_ Caller = ServiceClient{}
)

func (c *Client) target(method string) (*Client, string, string) {
	svc, fn := c.splitMethod(method)
	return c, svc, fn
}

func (s ServiceClient) target(method string) (*Client, string, string) {
	return s.c, s.name, method
}
