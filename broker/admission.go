package broker

import (
	"errors"

	"github.com/gaterpc/gate/gate"
)

// WithAdmission installs a filter that decides, on the broker's socket
// loop, whether a worker-service request is served (internal Gate calls
// are not filtered). It runs once per request as it arrives, after the
// observers saw it and before the request is queued or dispatched; no
// goroutine is started. A nil error admits the request. Any other error
// refuses it: the client gets an exception at once and the request ends
// with OutcomeRefused. A *gate.Error with a Class is sent as is (Class
// and Message, the Python repr of the exception); any other error is
// sent with the class of its code (gate.CodeOf).
//
// The filter must be cheap and must not block or call back into the
// Broker. req belongs to the broker: read it during the call, change and
// keep none of it. A later call replaces an earlier filter; nil removes
// it.
func WithAdmission(filter func(req *gate.Request) error) Option {
	return optionFunc(func(o *options) error {
		o.admission = filter
		return nil
	})
}

// refuse finishes r, which the admission filter refused with err. The
// observers see err as a *gate.Error: err itself when it is one with a
// Class, else one with err's code and the class sent.
func (l *loop) refuse(r *request, err error) {
	var ge *gate.Error
	if !errors.As(err, &ge) || ge.Class == "" {
		ge = gate.Errorf(gate.CodeOf(err), "%s", err.Error())
	}
	l.finish(r, OutcomeRefused, failBody(r, ge.Class, ge.Message), ge)
}
