package probe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// parseICMPErr reads the control data of one message from the error queue
// of a socket with IP_RECVERR (IPV6_RECVERR) as an ICMP error: an
// IP_RECVERR or IPV6_RECVERR struct sock_extended_err of origin
// SO_EE_ORIGIN_ICMP or SO_EE_ORIGIN_ICMP6, with the ICMP type and code,
// followed by the address of the sender (SO_EE_OFFENDER). name is the
// message's msg_name: the destination the quoted probe was sent to
// (invalid when the kernel gave none). ok is false for anything else,
// malformed input included; it never panics. The caller fills in data and
// at.
func parseICMPErr(oob []byte, name netip.AddrPort) (e icmpErr, ok bool) {
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
	e.from, e.dst = offender(ee[extErrLen:]), name
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

// errBatch is how many error-queue messages one recvmmsg reads: one call
// takes a send's stamp (and ICMP errors, and stamps of sends not read yet)
// and, returning fewer than errBatch, tells that the queue is empty, where
// recvmsg took one call per message and another for EAGAIN.
const errBatch = 8

// errQuote is room for what an ICMP error quotes of a probe: Linux quotes
// up to 576 bytes of the IPv4 packet, up to the minimum MTU of 1280 on
// IPv6.
const errQuote = 1280

// mmsghdr is struct mmsghdr: a msghdr and the length the kernel read
// into it (Go pads it as C does, on 32 and 64 bits).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// errQueue is the buffers of one recvmmsg(MSG_ERRQUEUE) of errBatch
// messages, kept by the socket and reused for every read.
type errQueue struct {
	hdrs  [errBatch]mmsghdr
	iovs  [errBatch]unix.Iovec
	data  [errBatch][errQuote]byte
	oob   [errBatch][512]byte
	names [errBatch]unix.RawSockaddrInet6 // room for a sockaddr_in too
	msgs  [errBatch]errMsg
}

// errMsg is one message read from the error queue: the quoted packet (for
// an ICMP error), the control data and msg_name, all in q's buffers.
type errMsg struct {
	data, oob []byte
	flags     int32
	name      netip.AddrPort // msg_name; invalid when empty
}

// read reads up to errBatch messages from fd's error queue without
// waiting and returns them, valid until the next read, and whether the
// queue is now known to be empty (fewer than errBatch came, or none).
func (q *errQueue) read(fd int) ([]errMsg, bool, error) {
	for i := range q.hdrs {
		q.iovs[i] = unix.Iovec{Base: &q.data[i][0]}
		q.iovs[i].SetLen(errQuote)
		h := &q.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&q.names[i])), Namelen: unix.SizeofSockaddrInet6, Iov: &q.iovs[i], Control: &q.oob[i][0]}
		h.SetIovlen(1)
		h.SetControllen(len(q.oob[i]))
	}
	n, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&q.hdrs[0])), errBatch, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT, 0, 0)
		return r, e
	})
	switch {
	case errors.Is(err, unix.EAGAIN):
		return nil, true, nil
	case err != nil:
		return nil, false, err
	}
	for i := range int(n) {
		h := &q.hdrs[i]
		q.msgs[i] = errMsg{
			data:  q.data[i][:min(int(h.len), errQuote)],
			oob:   q.oob[i][:min(int(h.hdr.Controllen), len(q.oob[i]))],
			flags: h.hdr.Flags,
			name:  rawName(&q.names[i], h.hdr.Namelen),
		}
	}
	return q.msgs[:n], n < errBatch, nil
}

// rawName converts the msg_name the kernel wrote (n bytes) to an address
// and port: an IPv4 or IPv6 one, or an invalid one for anything else (an
// empty name, as a TX stamp has with OPT_TSONLY). Unlike a unix.Sockaddr
// it costs no allocation.
func rawName(raw *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case n >= unix.SizeofSockaddrInet4 && raw.Family == unix.AF_INET:
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		return netip.AddrPortFrom(netip.AddrFrom4(v4.Addr), binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&v4.Port))[:]))
	case n >= unix.SizeofSockaddrInet6 && raw.Family == unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(raw.Addr), binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:]))
	}
	return netip.AddrPort{}
}
