// Package gatehook gives the other packages of this module access to what
// package gate keeps from its users: setting the hop (role) of a
// *gate.Request. A user-built Request has no role, so a user cannot make
// middleware believe it runs at another hop.
//
// Package gate installs the setter when it is initialised; any package that
// has a *gate.Request has imported gate, so the setter is always set.
package gatehook

var setRole func(req any, role uint8)

// InstallSetRole is called once by package gate.
func InstallSetRole(f func(req any, role uint8)) { setRole = f }

// SetRole sets the role of req, a *gate.Request, to role, a gate.Role.
func SetRole[Req any, Role ~uint8](req *Req, role Role) { setRole(req, uint8(role)) }
