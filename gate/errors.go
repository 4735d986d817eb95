package gate

import (
	"context"
	"errors"
	"fmt"

	"github.com/gaterpc/gate/internal/pystr"
)

// Sentinel errors. Test them with errors.Is. A remote *Error matches the
// sentinel of its exception class too: errors.Is(err, ErrNoService) holds
// for a broker's (or a 0.2.12 broker's) ServiceUnAvailableError reply, and
// errors.Is(err, ErrTimeout) for a TimeoutError reply (see [Error.Is]).
var (
	ErrClosed        = errors.New("gate: closed")
	ErrTimeout       = errors.New("gate: timeout")
	ErrNoService     = errors.New("gate: no such service")
	ErrInvalidOption = errors.New("gate: invalid option")
	ErrBrokerLost    = errors.New("gate: broker connection lost")
	ErrTooLarge      = errors.New("gate: message too large")
)

// Code is a call's status, with gRPC's names. It is used on the wire (via
// the exception class), in rpc.response.status_code, in metric labels and
// in logs.
type Code uint8

// Status codes.
const (
	OK Code = iota
	Canceled
	Unknown
	InvalidArgument
	DeadlineExceeded
	NotFound
	ResourceExhausted
	Unimplemented
	Internal
	Unavailable
)

var codeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE"}

// String returns the canonical upper-case name (as in gRPC status codes).
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("Code(%d)", uint8(c))
}

// Error is a remote exception or a status error. On the wire it is the
// exception triple [Class, Message (repr-like), Traceback].
type Error struct {
	Code      Code
	Class     string // exception class name, e.g. "ValueError"
	Message   string // repr-like text, e.g. "ValueError('boom!')"
	Traceback string
}

// Error renders the code and the repr-like message, e.g.
// "gate: INVALID_ARGUMENT: ValueError('boom!')".
func (e *Error) Error() string {
	return "gate: " + e.Code.String() + ": " + e.Message
}

// Is reports whether e is an instance of target: a remote exception matches
// the sentinel of its class, so code written against the sentinels does
// not need to know whether an error was raised locally or came over the
// wire.
//
//	ServiceUnAvailableError  ErrNoService  (no live worker serves the service)
//	TimeoutError             ErrTimeout    (a deadline passed at the broker or the worker)
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoService:
		return e.Class == "ServiceUnAvailableError"
	case ErrTimeout:
		return e.Class == "TimeoutError"
	}
	return false
}

// Errorf returns an *Error with the given code; its class is derived from
// the code.
func Errorf(code Code, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	cls := classForCode(code)
	return &Error{Code: code, Class: cls, Message: cls + "(" + pyRepr(msg) + ")"}
}

// Exception classes gate uses on the wire, mapped to codes. Classes sent
// by 0.2.12 brokers keep their Python names.
var classCodes = map[string]Code{
	"ServiceUnAvailableError": Unavailable,
	"BusyWorkerError":         ResourceExhausted,
	"WorkerLostError":         Unavailable,
	"AttributeError":          Unimplemented,
	"TimeoutError":            DeadlineExceeded,
	"CancelledError":          Canceled,
	"TypeError":               InvalidArgument,
	"ValueError":              InvalidArgument,
	"NotFoundError":           NotFound,
	"RuntimeError":            Internal,
	"InternalError":           Internal,
}

// codeForClass maps an exception class name to a Code (Unknown if
// unknown). NewException(class, "").Code gives it to users.
func codeForClass(class string) Code {
	if c, ok := classCodes[class]; ok {
		return c
	}
	return Unknown
}

// classForCode is the exception class gate sends for a code (the class
// of [Errorf]'s errors).
func classForCode(c Code) string {
	switch c {
	case Canceled:
		return "CancelledError"
	case InvalidArgument:
		return "TypeError"
	case DeadlineExceeded:
		return "TimeoutError"
	case NotFound:
		return "NotFoundError"
	case ResourceExhausted:
		return "BusyWorkerError"
	case Unimplemented:
		return "AttributeError"
	case Internal:
		return "RuntimeError"
	case Unavailable:
		return "ServiceUnAvailableError"
	}
	return "Exception"
}

// CodeOf classifies any error: nil is OK, *Error gives its code, context
// errors and sentinels map to their codes, everything else is Unknown.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var ge *Error
	switch {
	case errors.As(err, &ge):
		return ge.Code
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrTimeout):
		return DeadlineExceeded
	case errors.Is(err, ErrNoService):
		return Unavailable
	case errors.Is(err, ErrClosed), errors.Is(err, ErrBrokerLost):
		return Unavailable
	case errors.Is(err, ErrTooLarge):
		return ResourceExhausted
	}
	return Unknown
}

// pyRepr renders s like Python's repr of a str, as the repr element of an
// exception triple shows a message: pyRepr("boom!") is 'boom!'.
func pyRepr(s string) string { return pystr.Repr(s) }
