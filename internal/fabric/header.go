package fabric

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ztna/ztna/internal/control"
)

// protocolVersion is the first byte of every Request and Response.
const protocolVersion = 1

// Limits that keep a malicious or broken peer from making us allocate much.
const (
	maxRequestBody  = 16 << 10
	maxResponseBody = 1 << 20
)

// Op says what a stream is for.
type Op uint8

const (
	// OpDial asks for a stream to a service target. Client → hub carries Target and the first
	// end-to-end handshake message; hub → router adds Service and Identity.
	OpDial Op = 1
	// OpList asks the hub for the services the identity may dial (Response.Payload is JSON).
	OpList Op = 2
	// opControl opens a link's control stream (keepalives); never seen by users of the package.
	opControl Op = 3
	// OpWatch asks the hub for the services the identity may dial now and whenever they change:
	// each list is one Response on the stream (the first at once), until either end closes it.
	OpWatch Op = 4
)

// Request opens a stream.
type Request struct {
	Op       Op
	Target   string // "host:port" as the client asked for it
	Service  string // name of the service the hub matched (hub → router only)
	Identity string // id of the dialing identity, from its certificate (hub → router only)
	Payload  []byte // first end-to-end handshake message
}

// ServiceInfo is one entry of the JSON array an OpList response carries: a service the
// identity may dial.
type ServiceInfo struct {
	Name       string              `json:"name"`
	Address    string              `json:"address"`
	Port       int                 `json:"port"`
	PortRanges []control.PortRange `json:"port_ranges,omitempty"`
	Protocol   string              `json:"protocol"`
}

// Code is the result of a Request.
type Code uint8

// Result codes. The zero value is success.
const (
	OK            Code = 0
	NotAuthorized Code = 1 // no policy lets the identity dial this, or the router does not host it
	NoRoute       Code = 2 // the service exists for this identity but no healthy router hosts it
	TargetRefused Code = 3 // the router reached the target host, which refused the connection
	Unreachable   Code = 4 // the target could not be resolved or reached in time
	BadRequest    Code = 5 // malformed request or failed end-to-end handshake
	Unavailable   Code = 6 // the hub or router is shutting down or overloaded; try another
	// LimitReached: a per-link or per-identity limit refused the stream or link (the message
	// names the limit and its config key); another hub or router may take it.
	LimitReached Code = 7
	maxCode           = LimitReached
)

var codeText = [...]string{
	OK:            "ok",
	NotAuthorized: "not authorized",
	NoRoute:       "no route",
	TargetRefused: "target refused",
	Unreachable:   "unreachable",
	BadRequest:    "bad request",
	Unavailable:   "unavailable",
	LimitReached:  "limit reached",
}

func (c Code) String() string {
	if c <= maxCode {
		return codeText[c]
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// Response answers a Request.
type Response struct {
	Code    Code
	Message string // human-readable detail for a failure
	Payload []byte // end-to-end handshake reply (OpDial) or the service list (OpList)
}

// Err returns nil for OK and an *Error otherwise.
func (r *Response) Err() error {
	if r.Code == OK {
		return nil
	}
	return &Error{Code: r.Code, Message: r.Message}
}

// Error is a failed Request. errors.Is matches it against the Err* values by code.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}

// Is matches errors with the same code, so errors.Is(err, fabric.ErrNotAuthorized) works.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errors to compare with errors.Is.
var (
	ErrNotAuthorized = &Error{Code: NotAuthorized}
	ErrNoRoute       = &Error{Code: NoRoute}
	ErrTargetRefused = &Error{Code: TargetRefused}
	ErrUnreachable   = &Error{Code: Unreachable}
	ErrBadRequest    = &Error{Code: BadRequest}
	ErrUnavailable   = &Error{Code: Unavailable}
	ErrLimitReached  = &Error{Code: LimitReached}
)

// Marshal encodes the request: version, op, a 2-byte body length, then the fields, each with a
// varint length. One Write puts it on the stream.
func (r *Request) Marshal() ([]byte, error) {
	body := appendField(nil, []byte(r.Target))
	body = appendField(body, []byte(r.Service))
	body = appendField(body, []byte(r.Identity))
	body = appendField(body, r.Payload)
	if len(body) > maxRequestBody {
		return nil, fmt.Errorf("fabric: request of %d bytes exceeds %d", len(body), maxRequestBody)
	}
	b := make([]byte, 4, 4+len(body))
	b[0], b[1] = protocolVersion, byte(r.Op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(body)))
	return append(b, body...), nil
}

// ReadRequest reads exactly one request from r (never more, so the stream's next bytes stay).
func ReadRequest(r io.Reader) (*Request, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("fabric: read request: %w", err)
	}
	if h[0] != protocolVersion {
		return nil, fmt.Errorf("fabric: request version %d, this end speaks %d", h[0], protocolVersion)
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n > maxRequestBody {
		return nil, fmt.Errorf("fabric: request of %d bytes exceeds %d", n, maxRequestBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("fabric: read request: %w", err)
	}
	req := &Request{Op: Op(h[1])}
	fields := []*[]byte{new([]byte), new([]byte), new([]byte), &req.Payload}
	if err := parseFields(body, fields); err != nil {
		return nil, fmt.Errorf("fabric: malformed request: %w", err)
	}
	req.Target, req.Service, req.Identity = string(*fields[0]), string(*fields[1]), string(*fields[2])
	return req, nil
}

// Marshal encodes the response: version, code, a 4-byte body length, then message and payload,
// each with a varint length.
func (r *Response) Marshal() ([]byte, error) {
	body := appendField(nil, []byte(r.Message))
	body = appendField(body, r.Payload)
	if len(body) > maxResponseBody {
		return nil, fmt.Errorf("fabric: response of %d bytes exceeds %d", len(body), maxResponseBody)
	}
	b := make([]byte, 6, 6+len(body))
	b[0], b[1] = protocolVersion, byte(r.Code)
	binary.BigEndian.PutUint32(b[2:], uint32(len(body)))
	return append(b, body...), nil
}

// ReadResponse reads exactly one response from r.
func ReadResponse(r io.Reader) (*Response, error) {
	var h [6]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("fabric: read response: %w", err)
	}
	if h[0] != protocolVersion {
		return nil, fmt.Errorf("fabric: response version %d, this end speaks %d", h[0], protocolVersion)
	}
	n := binary.BigEndian.Uint32(h[2:])
	if n > maxResponseBody {
		return nil, fmt.Errorf("fabric: response of %d bytes exceeds %d", n, maxResponseBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("fabric: read response: %w", err)
	}
	resp := &Response{Code: Code(h[1])}
	msg := new([]byte)
	if err := parseFields(body, []*[]byte{msg, &resp.Payload}); err != nil {
		return nil, fmt.Errorf("fabric: malformed response: %w", err)
	}
	resp.Message = string(*msg)
	return resp, nil
}

// WriteResponse sends resp on w in one Write.
func WriteResponse(w io.Writer, resp *Response) error {
	b, err := resp.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func appendField(b, f []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// parseFields splits body into the given fields; every field must be present and nothing may
// follow the last one.
func parseFields(body []byte, fields []*[]byte) error {
	for i, f := range fields {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return fmt.Errorf("field %d truncated", i)
		}
		body = body[k:]
		if n > 0 {
			*f = body[:n:n]
		}
		body = body[n:]
	}
	if len(body) != 0 {
		return fmt.Errorf("%d unexpected trailing bytes", len(body))
	}
	return nil
}
