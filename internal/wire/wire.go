package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Protocol headers and names (docs/wire-protocol.md sections 1.3, 6, 7, 8, 13).
const (
	ClientHeader = "MDPC01"
	WorkerHeader = "MDPW01"

	// InternalService is the broker's own service name. It is reserved:
	// no worker can register it.
	InternalService = "Gate"
	// DefaultService is the service name used when none is given.
	DefaultService = "GateRPC"
	// DescriptionSep separates the READY fields.
	DescriptionSep = ":"

	TagStream          = "GateStreamGenerator"
	TagStreamEnd       = "GateStreamEnd"
	TagStreamException = "GateStreamException"
	// TagStreamBatch marks a batch of stream items (StreamBatchBody), a
	// gate extension.
	TagStreamBatch   = "GateStreamBatch"
	TagHuge          = "GateStreamHugData"
	TagHugeEnd       = "HugeDataEND"
	TagHugeException = "HugeDataException"

	// GateCapability is the single extra frame a gate worker puts on a
	// HEARTBEAT to tell a gate broker it understands CmdCancel. A 0.2.12
	// broker ignores heartbeats with extra frames.
	GateCapability = "gaterpc/1"
	// GateCapabilityAck is GateCapability plus a promise: the worker ends
	// every call, cancelled ones too, with a final reply, so a gate broker
	// keeps a cancelled call's capacity until the worker is done with it.
	GateCapabilityAck = "gaterpc/2"
)

var (
	clientHeader   = []byte(ClientHeader)
	workerHeader   = []byte(WorkerHeader)
	tagStream      = []byte(TagStream)
	tagStreamEnd   = []byte(TagStreamEnd)
	tagStreamBatch = []byte(TagStreamBatch)
	tagStreamExc   = []byte(TagStreamException)
	tagHuge        = []byte(TagHuge)
	tagHugeEnd     = []byte(TagHugeEnd)
	tagHugeExc     = []byte(TagHugeException)
)

// Command is a worker-protocol (MDPW01) command byte.
type Command byte

// Worker commands. CmdCancel is a gate extension (broker to worker only),
// sent only to workers that announced GateCapability.
const (
	CmdReady      Command = 0x01
	CmdRequest    Command = 0x02
	CmdReply      Command = 0x03
	CmdHeartbeat  Command = 0x04
	CmdDisconnect Command = 0x05
	CmdCancel     Command = 0x06
)

func (c Command) String() string {
	switch c {
	case CmdReady:
		return "READY"
	case CmdRequest:
		return "REQUEST"
	case CmdReply:
		return "REPLY"
	case CmdHeartbeat:
		return "HEARTBEAT"
	case CmdDisconnect:
		return "DISCONNECT"
	case CmdCancel:
		return "CANCEL"
	case CmdCredit:
		return "CREDIT"
	}
	return fmt.Sprintf("Command(0x%02x)", byte(c))
}

// ErrMalformed matches every *ProtocolError.
var ErrMalformed = errors.New("wire: malformed message")

// Reasons reported by ProtocolError. They form a closed set and are used as
// metric label values for dropped messages.
const (
	ReasonTooFewFrames   = "too_few_frames"
	ReasonTooManyFrames  = "too_many_frames"
	ReasonDelimiter      = "delimiter"
	ReasonHeader         = "header"
	ReasonCommand        = "command"
	ReasonService        = "service"
	ReasonReady          = "ready"
	ReasonRequestID      = "request_id"
	ReasonRoutingID      = "routing_id"
	ReasonBody           = "body"
	ReasonExtension      = "extension"
	ReasonUnexpectedData = "unexpected_frames"
)

// ProtocolError says why a message was rejected.
type ProtocolError struct {
	Reason string // one of the Reason* constants
	Detail string // human-readable detail
}

func (e *ProtocolError) Error() string { return "wire: " + e.Reason + ": " + e.Detail }

// Is reports whether target is ErrMalformed.
func (e *ProtocolError) Is(target error) bool { return target == ErrMalformed }

func perr(reason, format string, args ...any) error {
	return &ProtocolError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// SplitRouting separates the routing id a ROUTER socket prepends from the
// rest of the message.
func SplitRouting(frames [][]byte) (id []byte, rest [][]byte, err error) {
	if len(frames) < 1 || len(frames[0]) == 0 || len(frames[0]) > 255 {
		return nil, nil, perr(ReasonRoutingID, "missing or invalid routing id")
	}
	return frames[0], frames[1:], nil
}

// WithRouting returns frames prefixed by a destination routing id, as a
// ROUTER socket expects them.
func WithRouting(id []byte, frames [][]byte) [][]byte {
	out := make([][]byte, 0, len(frames)+1)
	out = append(out, id)
	return append(out, frames...)
}

func checkHead(frames [][]byte, header []byte) error {
	if len(frames) < 2 {
		return perr(ReasonTooFewFrames, "%d frames, want at least 2", len(frames))
	}
	if len(frames[0]) != 0 {
		return perr(ReasonDelimiter, "first frame is %d bytes, want empty delimiter", len(frames[0]))
	}
	if !bytes.Equal(frames[1], header) {
		return perr(ReasonHeader, "header %q, want %q", truncate(frames[1]), header)
	}
	return nil
}

func truncate(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// ClientRequest is a client's request (client to broker, MDPC01).
// Wire: ” | MDPC01 | service | request-id | body...
type ClientRequest struct {
	Service   string
	RequestID []byte
	Body      [][]byte // func, [args, [kwargs]] msgpack frames; not validated here
}

// Frames encodes r in the DEALER view.
func (r ClientRequest) Frames() [][]byte {
	out := make([][]byte, 0, 4+len(r.Body))
	out = append(out, nil, clientHeader, []byte(r.Service), r.RequestID)
	return append(out, r.Body...)
}

// ParseClientRequest decodes a client request (DEALER view). The body is not
// validated: for worker services the broker forwards it verbatim.
func ParseClientRequest(frames [][]byte) (ClientRequest, error) {
	if err := checkHead(frames, clientHeader); err != nil {
		return ClientRequest{}, err
	}
	if len(frames) < 4 {
		return ClientRequest{}, perr(ReasonTooFewFrames, "%d frames, want service and request id", len(frames))
	}
	if len(frames[2]) == 0 {
		return ClientRequest{}, perr(ReasonService, "empty service name")
	}
	return ClientRequest{Service: string(frames[2]), RequestID: frames[3], Body: frames[4:]}, nil
}

// ClientReply is one reply message (broker to client, MDPC01).
// Wire: ” | MDPC01 | service | request-id | body...
type ClientReply struct {
	Service   string
	RequestID []byte
	Body      [][]byte
}

// Frames encodes r in the DEALER view.
func (r ClientReply) Frames() [][]byte {
	out := make([][]byte, 0, 4+len(r.Body))
	out = append(out, nil, clientHeader, []byte(r.Service), r.RequestID)
	return append(out, r.Body...)
}

// ParseClientReply decodes a reply as the client's DEALER receives it.
func ParseClientReply(frames [][]byte) (ClientReply, error) {
	if err := checkHead(frames, clientHeader); err != nil {
		return ClientReply{}, err
	}
	if len(frames) < 4 {
		return ClientReply{}, perr(ReasonTooFewFrames, "%d frames, want service and request id", len(frames))
	}
	if len(frames) < 5 {
		return ClientReply{}, perr(ReasonBody, "reply has no body")
	}
	return ClientReply{Service: string(frames[2]), RequestID: frames[3], Body: frames[4:]}, nil
}

// WorkerMessage is any MDPW01 message, in either direction. Which fields
// are set depends on Command:
//
//	READY      Service, Description, Capacity
//	REQUEST    Client, RequestID, Body  (broker to worker)
//	REPLY      Client, RequestID, Body  (worker to broker)
//	CANCEL     Client, RequestID        (broker to worker, gate extension)
//	CREDIT     Client, RequestID, Body  (broker to worker, gate extension; Body is one AppendCredit frame)
//	HEARTBEAT  Extra (0 frames, or 1 frame such as GateCapability)
//	DISCONNECT Extra (0 or 1 frame; a 0.2.12 broker needs exactly 1 from a worker)
type WorkerMessage struct {
	Command     Command
	Service     string
	Description string
	Capacity    int
	Client      []byte
	RequestID   []byte
	Body        [][]byte
	Extra       [][]byte
}

// commandFrames are the one-byte command frames, shared: frames are only
// read (a send copies them), so no message needs its own.
var commandFrames = func() (t [256][]byte) {
	for i := range t {
		t[i] = []byte{byte(i)}
	}
	return t
}()

func commandFrame(c Command) []byte { return commandFrames[c][:1:1] }

// Frames encodes m in the DEALER view.
func (m WorkerMessage) Frames() [][]byte {
	out := make([][]byte, 0, 6+len(m.Body)+len(m.Extra))
	out = append(out, nil, workerHeader, commandFrame(m.Command))
	switch m.Command {
	case CmdReady:
		out = append(out, []byte(ReadyText(m.Service, m.Description, m.Capacity)))
	case CmdRequest, CmdReply:
		out = append(out, m.Client, nil, m.RequestID)
		out = append(out, m.Body...)
	case CmdCancel:
		out = append(out, m.Client, nil, m.RequestID)
	case CmdCredit:
		out = append(out, m.Client, nil, m.RequestID)
		out = append(out, m.Body...)
	default:
		out = append(out, m.Extra...)
	}
	return out
}

// ReadyText formats the READY service frame name:description:capacity.
// A 0.2.12 broker ignores the READY unless the text splits into exactly
// three parts on ':', so neither service nor description should contain
// ':' (a gate broker only needs the service to be free of it).
func ReadyText(service, description string, capacity int) string {
	return service + DescriptionSep + description + DescriptionSep + strconv.Itoa(capacity)
}

// ParseReadyText parses name:description:capacity leniently: the name ends
// at the first ':' and the capacity starts after the last one, so a
// description may itself contain ':'. The capacity must be a non-negative
// decimal integer.
func ParseReadyText(s string) (service, description string, capacity int, err error) {
	first := strings.Index(s, DescriptionSep)
	last := strings.LastIndex(s, DescriptionSep)
	if first < 0 || first == last {
		return "", "", 0, perr(ReasonReady, "READY %q: want name:description:capacity", truncate([]byte(s)))
	}
	service, description = s[:first], s[first+1:last]
	capacity, cerr := strconv.Atoi(strings.TrimSpace(s[last+1:]))
	if cerr != nil || capacity < 0 {
		return "", "", 0, perr(ReasonReady, "READY capacity %q is not a non-negative integer", truncate([]byte(s[last+1:])))
	}
	if service == "" {
		return "", "", 0, perr(ReasonReady, "READY with empty service name")
	}
	return service, description, capacity, nil
}

// ParseWorkerMessage decodes an MDPW01 message (DEALER view; a broker
// strips the routing id first with SplitRouting).
func ParseWorkerMessage(frames [][]byte) (WorkerMessage, error) {
	if err := checkHead(frames, workerHeader); err != nil {
		return WorkerMessage{}, err
	}
	if len(frames) < 3 || len(frames[2]) != 1 {
		return WorkerMessage{}, perr(ReasonCommand, "missing or multi-byte command frame")
	}
	m := WorkerMessage{Command: Command(frames[2][0])}
	rest := frames[3:]
	switch m.Command {
	case CmdReady:
		if len(rest) != 1 {
			return WorkerMessage{}, perr(ReasonReady, "READY with %d field frames, want 1", len(rest))
		}
		var err error
		m.Service, m.Description, m.Capacity, err = ParseReadyText(string(rest[0]))
		if err != nil {
			return WorkerMessage{}, err
		}
	case CmdRequest, CmdReply, CmdCancel, CmdCredit:
		if len(rest) < 3 {
			return WorkerMessage{}, perr(ReasonTooFewFrames, "%v with %d frames, want client, '', request id", m.Command, len(rest))
		}
		if len(rest[0]) == 0 {
			return WorkerMessage{}, perr(ReasonRoutingID, "%v with empty client id", m.Command)
		}
		if len(rest[1]) != 0 {
			return WorkerMessage{}, perr(ReasonDelimiter, "%v: frame after client id is %d bytes, want empty", m.Command, len(rest[1]))
		}
		m.Client, m.RequestID, m.Body = rest[0], rest[2], rest[3:]
		switch m.Command {
		case CmdCancel:
			if len(m.Body) != 0 {
				return WorkerMessage{}, perr(ReasonUnexpectedData, "CANCEL with %d extra frames", len(m.Body))
			}
			m.Body = nil
		case CmdCredit:
			if len(m.Body) != 1 {
				return WorkerMessage{}, perr(ReasonBody, "CREDIT with %d body frames, want 1", len(m.Body))
			}
			if _, err := ParseCredit(m.Body[0]); err != nil {
				return WorkerMessage{}, err
			}
		case CmdReply:
			if len(m.Body) == 0 {
				return WorkerMessage{}, perr(ReasonBody, "REPLY without body")
			}
		}
	case CmdHeartbeat, CmdDisconnect:
		if len(rest) > 1 {
			return WorkerMessage{}, perr(ReasonUnexpectedData, "%v with %d extra frames, want at most 1", m.Command, len(rest))
		}
		if len(rest) == 1 {
			m.Extra = rest
		}
	default:
		return WorkerMessage{}, perr(ReasonCommand, "unknown command 0x%02x", byte(m.Command))
	}
	return m, nil
}

// ReplyKind classifies the body of one reply message.
type ReplyKind uint8

// Reply kinds (docs/wire-protocol.md sections 5, 6, 7).
const (
	ReplyUnknown     ReplyKind = iota // not a recognised body; clients ignore it
	ReplySingle                       // one msgpack {result, exception} map
	ReplyStreamItem                   // GateStreamGenerator | item
	ReplyStreamEnd                    // GateStreamGenerator | GateStreamEnd
	ReplyStreamError                  // GateStreamGenerator | GateStreamException | triple
	ReplyHugeChunk                    // GateStreamHugData | chunk (possibly empty)
	ReplyHugeEnd                      // GateStreamHugData | HugeDataEND
	ReplyHugeError                    // GateStreamHugData | GateStreamException | triple
)

var replyKindNames = [...]string{"unknown", "single", "stream_item", "stream_end", "stream_error", "huge_chunk", "huge_end", "huge_error"}

func (k ReplyKind) String() string {
	if int(k) < len(replyKindNames) {
		return replyKindNames[k]
	}
	return "ReplyKind(" + strconv.Itoa(int(k)) + ")"
}

// Final reports whether a reply of this kind finishes its request.
func (k ReplyKind) Final() bool {
	switch k {
	case ReplySingle, ReplyStreamEnd, ReplyStreamError, ReplyHugeEnd, ReplyHugeError:
		return true
	}
	return false
}

// IsError reports whether the kind carries an exception marker.
func (k ReplyKind) IsError() bool { return k == ReplyStreamError || k == ReplyHugeError }

// ClassifyReply tells what a reply body is without decoding msgpack. For
// the tagged kinds payload is the frame after the tag (item, chunk or
// exception triple); for ReplySingle it is the single frame.
func ClassifyReply(body [][]byte) (kind ReplyKind, payload []byte) {
	switch {
	case len(body) == 1:
		return ReplySingle, body[0]
	case len(body) == 2 && bytes.Equal(body[0], tagStream):
		if bytes.Equal(body[1], tagStreamEnd) {
			return ReplyStreamEnd, nil
		}
		return ReplyStreamItem, body[1]
	case len(body) == 3 && bytes.Equal(body[0], tagStream) && bytes.Equal(body[1], tagStreamExc):
		return ReplyStreamError, body[2]
	case len(body) == 3 && bytes.Equal(body[0], tagStream) && bytes.Equal(body[1], tagStreamBatch):
		return ReplyStreamItem, body[2] // a batch: StreamBatchBody
	case len(body) == 2 && bytes.Equal(body[0], tagHuge):
		if bytes.Equal(body[1], tagHugeEnd) {
			return ReplyHugeEnd, nil
		}
		return ReplyHugeChunk, body[1]
	case len(body) == 3 && bytes.Equal(body[0], tagHuge) && (bytes.Equal(body[1], tagStreamExc) || bytes.Equal(body[1], tagHugeExc)):
		return ReplyHugeError, body[2]
	}
	return ReplyUnknown, nil
}

// IsStreamBatch reports whether a ReplyStreamItem body is a batch
// (StreamBatchBody): its payload is then the concatenated items.
func IsStreamBatch(body [][]byte) bool { return len(body) == 3 && bytes.Equal(body[1], tagStreamBatch) }

// Reply body builders. payload frames are msgpack already.

// SingleBody is the body of a single reply: one {result, exception} map.
func SingleBody(replyMap []byte) [][]byte { return [][]byte{replyMap} }

// StreamItemBody is GateStreamGenerator | item.
func StreamItemBody(item []byte) [][]byte { return [][]byte{tagStream, item} }

// StreamBatchBody is GateStreamGenerator | GateStreamBatch | items, where
// items is several msgpack-encoded stream items concatenated: a gate
// extension sent only for requests whose id carries MetaBatch and
// MetaRelay = RelayBatch (docs/flow-control.md §7). ClassifyReply reports
// it as ReplyStreamItem with items as payload (IsStreamBatch tells it from
// a single item); codec.SplitValue splits it.
func StreamBatchBody(items []byte) [][]byte { return [][]byte{tagStream, tagStreamBatch, items} }

// StreamEndBody is GateStreamGenerator | GateStreamEnd.
func StreamEndBody() [][]byte { return [][]byte{tagStream, tagStreamEnd} }

// StreamErrorBody is GateStreamGenerator | GateStreamException | triple.
func StreamErrorBody(triple []byte) [][]byte { return [][]byte{tagStream, tagStreamExc, triple} }

// HugeChunkBody is GateStreamHugData | chunk.
func HugeChunkBody(chunk []byte) [][]byte { return [][]byte{tagHuge, chunk} }

// HugeEndBody is GateStreamHugData | HugeDataEND.
func HugeEndBody() [][]byte { return [][]byte{tagHuge, tagHugeEnd} }

// HugeErrorBody is GateStreamHugData | GateStreamException | triple (the
// 0.2.12 worker layout).
func HugeErrorBody(triple []byte) [][]byte { return [][]byte{tagHuge, tagStreamExc, triple} }
