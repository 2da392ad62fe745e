package topology

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nlaTypeMask clears NLA_F_NESTED and NLA_F_NET_BYTEORDER from an
// attribute's type (NLA_TYPE_MASK in linux/netlink.h).
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)

// parseFlow parses one conntrack entry as a dump sends it (the message
// after its nlmsghdr: nfgenmsg, then attributes) into the fields cnitrace
// reads: family, both tuples with their counters, mark, zone and timeout.
// Other attributes are skipped. Malformed input is an error, never a panic.
func parseFlow(msg []byte) (*netlink.ConntrackFlow, error) {
	if len(msg) < nl.SizeofNfgenmsg {
		return nil, fmt.Errorf("message of %d bytes, shorter than its nfgenmsg", len(msg))
	}
	fl := &netlink.ConntrackFlow{FamilyType: msg[0]}
	err := walkAttrs(msg[nl.SizeofNfgenmsg:], func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case nl.CTA_TUPLE_ORIG:
			err = parseTuple(v, &fl.Forward)
		case nl.CTA_TUPLE_REPLY:
			err = parseTuple(v, &fl.Reverse)
		case nl.CTA_COUNTERS_ORIG:
			err = parseCounters(v, &fl.Forward)
		case nl.CTA_COUNTERS_REPLY:
			err = parseCounters(v, &fl.Reverse)
		case nl.CTA_MARK:
			fl.Mark, err = be32(v)
		case nl.CTA_TIMEOUT:
			fl.TimeOut, err = be32(v)
		case nl.CTA_ZONE:
			fl.Zone, err = be16(v)
		}
		if err != nil {
			return fmt.Errorf("attribute %d: %w", typ, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fl, nil
}

// walkAttrs calls fn with the type and value of every netlink attribute
// in b, in order.
func walkAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < unix.SizeofNlAttr {
			return fmt.Errorf("%d trailing bytes, shorter than an attribute header", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofNlAttr || n > len(b) {
			return fmt.Errorf("attribute length %d, %d bytes left", n, len(b))
		}
		if err := fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[unix.SizeofNlAttr:n]); err != nil {
			return err
		}
		b = b[min(nlaAlign(n), len(b)):]
	}
	return nil
}

func nlaAlign(n int) int { return (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// parseTuple parses CTA_TUPLE_ORIG or CTA_TUPLE_REPLY: addresses in
// CTA_TUPLE_IP, protocol and ports in CTA_TUPLE_PROTO.
func parseTuple(b []byte, t *netlink.IPTuple) error {
	return walkAttrs(b, func(typ uint16, v []byte) error {
		switch typ {
		case nl.CTA_TUPLE_IP:
			return walkAttrs(v, func(typ uint16, v []byte) error { return parseAddr(typ, v, t) })
		case nl.CTA_TUPLE_PROTO:
			return walkAttrs(v, func(typ uint16, v []byte) error { return parseProto(typ, v, t) })
		}
		return nil
	})
}

func parseAddr(typ uint16, v []byte, t *netlink.IPTuple) error {
	want := net.IPv4len
	if typ == nl.CTA_IP_V6_SRC || typ == nl.CTA_IP_V6_DST {
		want = net.IPv6len
	}
	if len(v) != want {
		return fmt.Errorf("address attribute %d of %d bytes, want %d", typ, len(v), want)
	}
	switch typ {
	case nl.CTA_IP_V4_SRC, nl.CTA_IP_V6_SRC:
		t.SrcIP = net.IP(append([]byte(nil), v...))
	case nl.CTA_IP_V4_DST, nl.CTA_IP_V6_DST:
		t.DstIP = net.IP(append([]byte(nil), v...))
	}
	return nil
}

func parseProto(typ uint16, v []byte, t *netlink.IPTuple) error {
	var err error
	switch typ {
	case nl.CTA_PROTO_NUM:
		if len(v) < 1 {
			return fmt.Errorf("empty protocol attribute")
		}
		t.Protocol = v[0]
	case nl.CTA_PROTO_SRC_PORT:
		t.SrcPort, err = be16(v)
	case nl.CTA_PROTO_DST_PORT:
		t.DstPort, err = be16(v)
	}
	return err
}

// parseCounters parses CTA_COUNTERS_ORIG or CTA_COUNTERS_REPLY (present
// when nf_conntrack_acct is on).
func parseCounters(b []byte, t *netlink.IPTuple) error {
	return walkAttrs(b, func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case nl.CTA_COUNTERS_PACKETS:
			t.Packets, err = be64(v)
		case nl.CTA_COUNTERS_BYTES:
			t.Bytes, err = be64(v)
		}
		return err
	})
}

func be16(v []byte) (uint16, error) {
	if len(v) < 2 {
		return 0, fmt.Errorf("%d bytes, want 2", len(v))
	}
	return binary.BigEndian.Uint16(v), nil
}

func be32(v []byte) (uint32, error) {
	if len(v) < 4 {
		return 0, fmt.Errorf("%d bytes, want 4", len(v))
	}
	return binary.BigEndian.Uint32(v), nil
}

func be64(v []byte) (uint64, error) {
	if len(v) < 8 {
		return 0, fmt.Errorf("%d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
