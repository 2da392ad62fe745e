package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// txTimestamping is what Listen sets with SO_TIMESTAMPING: a software
// stamp when a request enters the device queue (TX_SCHED), reported
// (SOFTWARE) with a per-packet key (OPT_ID) and without the packet
// (OPT_TSONLY). TX_SOFTWARE is left out on purpose: the driver's stamp is
// taken on the pod's veth after its capture tap, so the clone that carries
// it to the error queue was made inside the egress segment the report
// times (0.9 us of a 10 us segment, docs/probe.md), and it told the report
// nothing SCHED does not. There is no RX flag either: SOF_TIMESTAMPING_RX_SOFTWARE,
// like SO_TIMESTAMP(NS), would turn on the host-wide RX timestamping key
// and change what every capture tap reports (design.md, kernel fact 1).
const txTimestamping = unix.SOF_TIMESTAMPING_TX_SCHED | unix.SOF_TIMESTAMPING_SOFTWARE |
	unix.SOF_TIMESTAMPING_OPT_ID | unix.SOF_TIMESTAMPING_OPT_TSONLY

// Layout of the control messages, for the running architecture.
const (
	cmsgAlign  = unix.SizeofPtr          // cmsghdr records are aligned to this
	cmsgHdrLen = unix.SizeofPtr + 8      // size_t cmsg_len; int cmsg_level; int cmsg_type
	scmTSLen   = 3 * 2 * unix.SizeofLong // struct scm_timestamping: 3 timespecs, ts[0] software
	extErrLen  = 16                      // struct sock_extended_err, without the offender address
)

// errBadCmsg is wrapped by every parse error of error-queue control data.
var errBadCmsg = errors.New("malformed control message")

// parseTxStamp reads the control data of one message from the socket's
// error queue: an SCM_TIMESTAMPING cmsg and an IP_RECVERR (or
// IPV6_RECVERR) struct sock_extended_err of origin
// SO_EE_ORIGIN_TIMESTAMPING, whose ee_info says SCHED and whose ee_data is
// the OPT_ID key. ok is false, with no error, for a well-formed message
// that holds no software SCHED stamp (an ICMP error, another kind of stamp,
// a hardware-only one). Malformed input gives an error, never a panic.
func parseTxStamp(oob []byte) (st txStamp, ok bool, err error) {
	var ts, ee []byte
	err = walkCmsgs(oob, func(level, typ int32, data []byte) {
		switch {
		case level == unix.SOL_SOCKET && typ == unix.SO_TIMESTAMPING:
			ts = data
		case level == unix.SOL_IP && typ == unix.IP_RECVERR, level == unix.SOL_IPV6 && typ == unix.IPV6_RECVERR:
			ee = data
		}
	})
	switch {
	case err != nil:
		return txStamp{}, false, err
	case ee == nil:
		return txStamp{}, false, fmt.Errorf("%w: no IP_RECVERR in %d bytes", errBadCmsg, len(oob))
	case len(ee) < extErrLen:
		return txStamp{}, false, fmt.Errorf("%w: IP_RECVERR of %d bytes, want %d", errBadCmsg, len(ee), extErrLen)
	}
	origin, info, key := ee[4], binary.NativeEndian.Uint32(ee[8:]), binary.NativeEndian.Uint32(ee[12:])
	if origin != unix.SO_EE_ORIGIN_TIMESTAMPING || info != unix.SCM_TSTAMP_SCHED {
		return txStamp{}, false, nil
	}
	if len(ts) < scmTSLen {
		return txStamp{}, false, fmt.Errorf("%w: SCM_TIMESTAMPING of %d bytes, want %d", errBadCmsg, len(ts), scmTSLen)
	}
	sec, nsec := readLong(ts), readLong(ts[unix.SizeofLong:]) // ts[0], the software stamp
	switch {
	case sec == 0 && nsec == 0:
		return txStamp{}, false, nil // a stamp the kernel did not take
	case nsec < 0 || nsec >= int64(time.Second):
		return txStamp{}, false, fmt.Errorf("%w: timespec {%d, %d}", errBadCmsg, sec, nsec)
	}
	return txStamp{key: key, at: time.Unix(sec, nsec)}, true, nil
}

func readLong(b []byte) int64 {
	if unix.SizeofLong == 8 {
		return int64(binary.NativeEndian.Uint64(b))
	}
	return int64(int32(binary.NativeEndian.Uint32(b)))
}

// walkCmsgs calls fn for every control message in b. Unlike
// unix.ParseSocketControlMessage it reads the headers with encoding/binary,
// so input of any length and alignment is safe to parse.
func walkCmsgs(b []byte, fn func(level, typ int32, data []byte)) error {
	for len(b) > 0 {
		if len(b) < cmsgHdrLen {
			return fmt.Errorf("%w: %d bytes left, less than a header", errBadCmsg, len(b))
		}
		n := uint64(binary.NativeEndian.Uint32(b))
		if unix.SizeofPtr == 8 {
			n = binary.NativeEndian.Uint64(b)
		}
		if n < cmsgHdrLen || n > uint64(len(b)) {
			return fmt.Errorf("%w: cmsg_len %d with %d bytes left", errBadCmsg, n, len(b))
		}
		level := int32(binary.NativeEndian.Uint32(b[unix.SizeofPtr:]))
		typ := int32(binary.NativeEndian.Uint32(b[unix.SizeofPtr+4:]))
		fn(level, typ, b[cmsgHdrLen:n])
		next := (n + cmsgAlign - 1) &^ (cmsgAlign - 1)
		if next >= uint64(len(b)) {
			break
		}
		b = b[next:]
	}
	return nil
}
