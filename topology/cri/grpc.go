package cri

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2/hpack"
)

// A gRPC client of the least that unary CRI calls need: HTTP/2 with prior
// knowledge on a unix socket (as the kubelet's connection to its runtime),
// one call at a time, uncompressed messages. Every CRI runtime serves CRI
// with grpc-go, which this is tested against (fake_test.go); see wire.go
// for why it is not grpc-go's own client.

// StatusError is a call the runtime answered with a gRPC status other than
// OK, or one that failed on the way (Code Unavailable for a broken
// connection, DeadlineExceeded or Canceled for ctx). Its text is grpc-go's:
// "rpc error: code = NotFound desc = ...".
type StatusError struct {
	Code    Code
	Message string
	broke   bool // the connection broke: it carries no more calls
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("rpc error: code = %s desc = %s", e.Code, e.Message)
}

// Code is a gRPC status code (google.golang.org/grpc/codes).
type Code uint32

// The gRPC status codes, numbered as grpc-go's codes package.
const (
	OK Code = iota
	Canceled
	Unknown
	InvalidArgument
	DeadlineExceeded
	NotFound
	AlreadyExists
	PermissionDenied
	ResourceExhausted
	FailedPrecondition
	Aborted
	OutOfRange
	Unimplemented
	Internal
	Unavailable
	DataLoss
	Unauthenticated
)

var codeNames = [...]string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
	"PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal",
	"Unavailable", "DataLoss", "Unauthenticated"}

// String names c as grpc-go does.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// HTTP/2 frame types and flags (RFC 9113).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// maxFrame is the largest frame payload accepted: HTTP/2's default
// SETTINGS_MAX_FRAME_SIZE, which this client never raises.
const maxFrame = 16384

// window is the flow-control window the client grants the runtime, for
// each stream and for the connection: more than the calls of one
// connection can bring (a few, each at most maxMsgSize), so it never
// needs a WINDOW_UPDATE.
const window = 1<<31 - 1

// rpcConn is one HTTP/2 connection to a runtime.
type rpcConn struct {
	mu     sync.Mutex // one call at a time
	c      net.Conn
	r      *bufio.Reader
	enc    *hpack.Encoder // writes to hb
	hb     bytes.Buffer
	dec    *hpack.Decoder
	stream uint32 // the last stream id used
	// broken is why the connection can carry no more calls: a call that
	// failed halfway (ctx ended, the socket broke) left it mid-frame.
	broken *StatusError
}

// newRPCConn starts HTTP/2 on c: the client preface, its settings (no
// server push, the largest windows) and the connection's window.
func newRPCConn(c net.Conn) (*rpcConn, error) {
	rc := &rpcConn{c: c, r: bufio.NewReaderSize(c, 32<<10), dec: hpack.NewDecoder(4096, nil)}
	rc.enc = hpack.NewEncoder(&rc.hb)
	b := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	var settings []byte
	settings = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(settings, 0x2), 0)      // SETTINGS_ENABLE_PUSH
	settings = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(settings, 0x4), window) // SETTINGS_INITIAL_WINDOW_SIZE
	b = appendFrame(b, frameSettings, 0, 0, settings)
	b = appendFrame(b, frameWindowUpdate, 0, 0, binary.BigEndian.AppendUint32(nil, window-65535)) // the connection's: 65535 to start with
	if _, err := c.Write(b); err != nil {
		return nil, err
	}
	return rc, nil
}

func appendFrame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream&0x7fffffff)
	return append(b, payload...)
}

func (rc *rpcConn) Close() error { return rc.c.Close() }

// call makes the unary call method (/runtime.v1.RuntimeService/Version)
// with the message req and returns the answer's message. Its errors are
// *StatusError.
func (rc *rpcConn) call(ctx context.Context, method string, req []byte) ([]byte, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, ctxStatus(err)
	}
	if rc.broken != nil {
		return nil, rc.broken
	}
	deadline, _ := ctx.Deadline()
	rc.c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { rc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, err := rc.roundTrip(method, req)
	if st := (*StatusError)(nil); errors.As(err, &st) && st.broke {
		rc.broken = st
	}
	if err != nil && (ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline))) {
		// ctx ended, or the socket's deadline, which is ctx's, came
		// first: the call is given up, as grpc-go says.
		rc.broken = connError(errors.New("a call on it was given up halfway"))
		if ctx.Err() == nil {
			return nil, ctxStatus(context.DeadlineExceeded)
		}
		return nil, ctxStatus(ctx.Err())
	}
	return resp, err
}

func ctxStatus(err error) *StatusError {
	if errors.Is(err, context.DeadlineExceeded) {
		return &StatusError{Code: DeadlineExceeded, Message: err.Error()}
	}
	return &StatusError{Code: Canceled, Message: err.Error()}
}

func connError(err error) *StatusError {
	return &StatusError{Code: Unavailable, Message: "connection error: " + err.Error(), broke: true}
}

// roundTrip sends the request on a new stream and reads until the
// stream ends.
func (rc *rpcConn) roundTrip(method string, req []byte) ([]byte, error) {
	rc.stream += 2
	if rc.stream == 2 {
		rc.stream = 1 // client streams are odd, from 1
	}
	rc.hb.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", method}, {":authority", "localhost"},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		rc.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(req))) // uncompressed, then the length
	msg = append(msg, req...)
	b := appendFrame(nil, frameHeaders, flagEndHeaders, rc.stream, rc.hb.Bytes())
	b = appendFrame(b, frameData, flagEndStream, rc.stream, msg) // CRI requests are far below maxFrame
	if _, err := rc.c.Write(b); err != nil {
		return nil, connError(err)
	}
	return rc.read()
}

// response is what read gathered of the call's stream.
type response struct {
	status     string // :status
	grpcStatus string // grpc-status, "" until the trailers
	message    string // grpc-message
	body       []byte
}

// read reads frames until the call's stream ends and returns its message.
func (rc *rpcConn) read() ([]byte, error) {
	var resp response
	var block []byte // a header block being continued
	ended := false   // the stream's END_STREAM was read
	for {
		typ, flags, stream, payload, err := rc.readFrame()
		if err != nil {
			return nil, connError(err)
		}
		switch {
		case typ == frameSettings && flags&flagAck == 0:
			err = rc.write(frameSettings, flagAck, 0, nil)
		case typ == framePing && flags&flagAck == 0:
			err = rc.write(framePing, flagAck, 0, payload)
		case typ == frameGoAway && len(payload) >= 8 && binary.BigEndian.Uint32(payload)&0x7fffffff < rc.stream:
			return nil, &StatusError{Code: Unavailable, Message: "the runtime closed the connection (GOAWAY)", broke: true}
		case typ == framePushPromise:
			return nil, connError(errors.New("unexpected PUSH_PROMISE"))
		case stream != rc.stream:
			// another stream's, or the connection's (WINDOW_UPDATE, PRIORITY)
		case typ == frameRSTStream:
			return nil, &StatusError{Code: Unavailable, Message: fmt.Sprintf("stream reset by the runtime (HTTP/2 error %d)", be32(payload))}
		case typ == frameData:
			if payload, err = unpad(flags, payload); err == nil {
				resp.body = append(resp.body, payload...)
				if len(resp.body) > maxMsgSize+5 {
					return nil, &StatusError{Code: ResourceExhausted, Message: fmt.Sprintf("received message larger than max (%d)", maxMsgSize)}
				}
			}
		case typ == frameHeaders || typ == frameContinuation:
			if typ == frameHeaders {
				if payload, err = unpad(flags, payload); err == nil && flags&flagPriority != 0 {
					if len(payload) < 5 {
						return nil, connError(errors.New("short HEADERS frame"))
					}
					payload = payload[5:]
				}
			}
			block = append(block, payload...)
			if err == nil && flags&flagEndHeaders != 0 {
				err = rc.headers(block, &resp)
				block = block[:0]
			}
		}
		if err != nil {
			return nil, connError(err)
		}
		if stream == rc.stream && flags&flagEndStream != 0 && (typ == frameData || typ == frameHeaders) {
			ended = true
		}
		if ended && len(block) == 0 {
			return resp.result()
		}
	}
}

func be32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func unpad(flags byte, p []byte) ([]byte, error) {
	if flags&flagPadded == 0 {
		return p, nil
	}
	if len(p) < 1 || int(p[0]) > len(p)-1 {
		return nil, errors.New("bad padding")
	}
	return p[1 : len(p)-int(p[0])], nil
}

func (rc *rpcConn) headers(block []byte, resp *response) error {
	fields, err := rc.dec.DecodeFull(block)
	if err != nil {
		return err
	}
	for _, f := range fields {
		switch f.Name {
		case ":status":
			resp.status = f.Value
		case "grpc-status":
			resp.grpcStatus = f.Value
		case "grpc-message":
			resp.message, _ = url.PathUnescape(f.Value)
		}
	}
	return nil
}

// result is the call's outcome once its stream ended.
func (r *response) result() ([]byte, error) {
	if r.status != "200" {
		return nil, &StatusError{Code: Unknown, Message: "unexpected HTTP status code from the runtime: " + r.status}
	}
	if r.grpcStatus == "" {
		return nil, &StatusError{Code: Internal, Message: "the runtime ended the stream without a gRPC status"}
	}
	if c, err := strconv.ParseUint(r.grpcStatus, 10, 32); err != nil || c != 0 {
		code := Unknown
		if err == nil {
			code = Code(c)
		}
		return nil, &StatusError{Code: code, Message: r.message}
	}
	if len(r.body) < 5 || r.body[0] != 0 || int(binary.BigEndian.Uint32(r.body[1:])) != len(r.body)-5 {
		return nil, &StatusError{Code: Internal, Message: "the runtime's answer is not one uncompressed gRPC message"}
	}
	return r.body[5:], nil
}

func (rc *rpcConn) write(typ, flags byte, stream uint32, payload []byte) error {
	_, err := rc.c.Write(appendFrame(nil, typ, flags, stream, payload))
	return err
}

// readFrame reads one frame.
func (rc *rpcConn) readFrame() (typ, flags byte, stream uint32, payload []byte, err error) {
	var h [9]byte
	if _, err = io.ReadFull(rc.r, h[:]); err != nil {
		return 0, 0, 0, nil, err
	}
	n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	if n > maxFrame {
		return 0, 0, 0, nil, fmt.Errorf("frame of %d bytes, more than %d: not an HTTP/2 gRPC server?", n, maxFrame)
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(rc.r, payload); err != nil {
		return 0, 0, 0, nil, err
	}
	return h[3], h[4], binary.BigEndian.Uint32(h[5:]) & 0x7fffffff, payload, nil
}
