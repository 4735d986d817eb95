// Package wire encodes and decodes the frames of the gate-rpc protocol
// (gaterpc 0.2.12, Majordomo-style MDPC01/MDPW01) and gate's own
// extensions. It never touches a socket: values go in, [][]byte frames come
// out, and back.
//
// Every decoder validates its input as the protocol requires and returns a
// *ProtocolError (matching ErrMalformed with errors.Is) whose Reason is a
// short, closed-set string suitable as a metric label. Decoded values alias
// the input frames; copy them if the frames are reused.
//
// Frames are given in the DEALER (wire) view: a ROUTER peer strips the
// routing id first with SplitRouting.
//
//	frames := wire.ClientRequest{Service: "GateRPC", RequestID: id, Body: body}.Frames()
//	req, err := wire.ParseClientRequest(frames)
package wire
