// Package gatehook gives the other packages of this module access to what
// package gate keeps from its users: setting the hop (role) of a
// *gate.Request (a user-built Request has no role, so a user cannot make
// middleware believe it runs at another hop), and building the *gate.Error
// of an exception that came over the wire.
//
// Package gate installs the functions when it is initialised; any package
// that uses them has imported gate, so they are always set.
package gatehook

var (
	setRole  func(req any, role uint8)
	newError func(class, repr, traceback string) error
)

// Install is called once by package gate.
func Install(role func(req any, role uint8), wireError func(class, repr, traceback string) error) {
	setRole, newError = role, wireError
}

// NewError returns the *gate.Error for a wire exception triple: its Code
// is the one gate derives from the class.
func NewError(class, repr, traceback string) error { return newError(class, repr, traceback) }

// SetRole sets the role of req, a *gate.Request, to role, a gate.Role.
func SetRole[Req any, Role ~uint8](req *Req, role Role) { setRole(req, uint8(role)) }
