package cri

import (
	"errors"
	"fmt"
	"strconv"
)

// The CRI v1 messages this package sends and reads, in protobuf's wire
// format, written and parsed by hand: only the fields FindPod uses
// (k8s.io/cri-api's api.proto numbers them), every other field skipped.
// The generated Go types would link the protobuf and gRPC runtimes into
// every command, and their package initialisation cost each run about
// 2.5 ms of CPU (docs/cri.md); the tests serve these to the client with
// those types.

// sandboxState is CRI's PodSandboxState.
type sandboxState int32

const (
	sandboxReady    sandboxState = 0 // SANDBOX_READY
	sandboxNotReady sandboxState = 1 // SANDBOX_NOTREADY
)

// String is the state as the runtime's API names it, SANDBOX_READY.
func (s sandboxState) String() string {
	switch s {
	case sandboxReady:
		return "SANDBOX_READY"
	case sandboxNotReady:
		return "SANDBOX_NOTREADY"
	}
	return strconv.Itoa(int(s))
}

// namespaceModeNode is CRI's NamespaceMode NODE: the pod shares the
// node's namespace.
const namespaceModeNode = 2

// metadata is CRI's PodSandboxMetadata.
type metadata struct {
	name, uid, namespace string
	attempt              uint32
}

// sandbox is CRI's PodSandbox, and the part of PodSandboxStatus FindPod
// reads: its state and network namespace mode.
type sandbox struct {
	id          string
	md          metadata
	state       sandboxState
	createdAt   int64
	networkMode int32 // status only: linux.namespaces.options.network
}

// versionResponse is CRI's VersionResponse.
type versionResponse struct{ runtimeName, runtimeVersion string }

// Wire types of protobuf's encoding.
const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

var errTruncated = errors.New("truncated message")

// parseError is a message that could not be parsed as the call's failure,
// as grpc-go reports one (Internal), or nil.
func parseError(err error) error {
	if err == nil {
		return nil
	}
	return &StatusError{Code: Internal, Message: "failed to unmarshal the received message: " + err.Error()}
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendLen(b []byte, field int, data []byte) []byte {
	b = appendVarint(b, uint64(field)<<3|wireLen)
	b = appendVarint(b, uint64(len(data)))
	return append(b, data...)
}

// listRequest is ListPodSandboxRequest, with a filter whose label_selector
// is labels when labels is not nil.
func listRequest(labels map[string]string) []byte {
	if labels == nil {
		return nil
	}
	var filter []byte
	for k, v := range labels {
		entry := appendLen(appendLen(nil, 1, []byte(k)), 2, []byte(v))
		filter = appendLen(filter, 3, entry) // PodSandboxFilter.label_selector
	}
	return appendLen(nil, 1, filter) // ListPodSandboxRequest.filter
}

// statusRequest is PodSandboxStatusRequest{pod_sandbox_id: id, verbose: true}.
func statusRequest(id string) []byte {
	b := appendLen(nil, 1, []byte(id))
	return append(appendVarint(b, 2<<3|wireVarint), 1)
}

// fields calls fn with each field of the message b: its number, wire type,
// and its value (varints and fixed-size numbers) or bytes (length-delimited).
func fields(b []byte, fn func(num, typ int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		tag, n := varint(b)
		if n == 0 {
			return errTruncated
		}
		b = b[n:]
		num, typ := int(tag>>3), int(tag&7)
		var v uint64
		var data []byte
		switch typ {
		case wireVarint:
			if v, n = varint(b); n == 0 {
				return errTruncated
			}
		case wireI64, wireI32:
			if n = 8; typ == wireI32 {
				n = 4
			}
			if len(b) < n {
				return errTruncated
			}
		case wireLen:
			l, m := varint(b)
			if m == 0 || uint64(len(b)-m) < l {
				return errTruncated
			}
			data, n = b[m:m+int(l)], m+int(l)
		default:
			return fmt.Errorf("field %d: unsupported wire type %d", num, typ)
		}
		b = b[n:]
		if err := fn(num, typ, v, data); err != nil {
			return err
		}
	}
	return nil
}

// varint decodes the varint at the start of b and its length, 0 when b
// holds none.
func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

func parseVersion(b []byte) (versionResponse, error) {
	var r versionResponse
	err := fields(b, func(num, typ int, _ uint64, data []byte) error {
		switch {
		case num == 2 && typ == wireLen:
			r.runtimeName = string(data)
		case num == 3 && typ == wireLen:
			r.runtimeVersion = string(data)
		}
		return nil
	})
	return r, err
}

func parseList(b []byte) ([]*sandbox, error) {
	var items []*sandbox
	err := fields(b, func(num, typ int, _ uint64, data []byte) error {
		if num != 1 || typ != wireLen {
			return nil
		}
		sb, err := parseSandbox(data, false)
		items = append(items, sb)
		return err
	})
	return items, err
}

// parseSandbox parses a PodSandbox, or with status a PodSandboxStatus:
// the fields both share have the same numbers.
func parseSandbox(b []byte, status bool) (*sandbox, error) {
	sb := &sandbox{}
	err := fields(b, func(num, typ int, v uint64, data []byte) error {
		switch {
		case num == 1 && typ == wireLen:
			sb.id = string(data)
		case num == 2 && typ == wireLen:
			return parseMetadata(data, &sb.md)
		case num == 3 && typ == wireVarint:
			sb.state = sandboxState(int32(v))
		case num == 4 && typ == wireVarint:
			sb.createdAt = int64(v)
		case num == 6 && typ == wireLen && status:
			return parseNetworkMode(data, &sb.networkMode)
		}
		return nil
	})
	return sb, err
}

func parseMetadata(b []byte, md *metadata) error {
	return fields(b, func(num, typ int, v uint64, data []byte) error {
		switch {
		case num == 1 && typ == wireLen:
			md.name = string(data)
		case num == 2 && typ == wireLen:
			md.uid = string(data)
		case num == 3 && typ == wireLen:
			md.namespace = string(data)
		case num == 4 && typ == wireVarint:
			md.attempt = uint32(v)
		}
		return nil
	})
}

// parseNetworkMode reads LinuxPodSandboxStatus.namespaces(1).options(2).network(1).
func parseNetworkMode(b []byte, mode *int32) error {
	path := []int{1, 2}
	for _, want := range path {
		var next []byte
		if err := fields(b, func(num, typ int, _ uint64, data []byte) error {
			if num == want && typ == wireLen {
				next = data
			}
			return nil
		}); err != nil || next == nil {
			return err
		}
		b = next
	}
	return fields(b, func(num, typ int, v uint64, _ []byte) error {
		if num == 1 && typ == wireVarint {
			*mode = int32(v)
		}
		return nil
	})
}

// parseStatus parses a PodSandboxStatusResponse: the status and the
// verbose info map.
func parseStatus(b []byte) (*sandbox, map[string]string, error) {
	sb := &sandbox{}
	info := map[string]string{}
	err := fields(b, func(num, typ int, _ uint64, data []byte) error {
		switch {
		case num == 1 && typ == wireLen:
			s, err := parseSandbox(data, true)
			sb = s
			return err
		case num == 2 && typ == wireLen:
			var k, v string
			err := fields(data, func(num, typ int, _ uint64, data []byte) error {
				switch {
				case num == 1 && typ == wireLen:
					k = string(data)
				case num == 2 && typ == wireLen:
					v = string(data)
				}
				return nil
			})
			info[k] = v
			return err
		}
		return nil
	})
	return sb, info, err
}
