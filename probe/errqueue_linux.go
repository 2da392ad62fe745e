package probe

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// parseICMPErr reads the control data of one message from the error queue
// of a socket with IP_RECVERR (IPV6_RECVERR) as an ICMP error: an
// IP_RECVERR or IPV6_RECVERR struct sock_extended_err of origin
// SO_EE_ORIGIN_ICMP or SO_EE_ORIGIN_ICMP6, with the ICMP type and code,
// followed by the address of the sender (SO_EE_OFFENDER). name is the
// message's msg_name: the destination the quoted probe was sent to. ok is
// false for anything else, malformed input included; it never panics. The
// caller fills in data and at.
func parseICMPErr(oob []byte, name unix.Sockaddr) (e icmpErr, ok bool) {
	var ee []byte
	if err := walkCmsgs(oob, func(level, typ int32, data []byte) {
		if level == unix.SOL_IP && typ == unix.IP_RECVERR || level == unix.SOL_IPV6 && typ == unix.IPV6_RECVERR {
			ee = data
		}
	}); err != nil || len(ee) < extErrLen {
		return icmpErr{}, false
	}
	switch ee[4] {
	case unix.SO_EE_ORIGIN_ICMP:
	case unix.SO_EE_ORIGIN_ICMP6:
		e.v6 = true
	default:
		return icmpErr{}, false
	}
	e.typ, e.code = ee[5], ee[6]
	e.from = offender(ee[extErrLen:])
	switch sa := name.(type) {
	case *unix.SockaddrInet4:
		e.dst = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		e.dst = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return e, true
}

// offender reads the struct sockaddr_in or sockaddr_in6 that follows a
// sock_extended_err, or returns an invalid address (AF_UNSPEC, or too
// short).
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}
