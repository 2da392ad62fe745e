package probe

import (
	"errors"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sendTimed makes one sendto of b to dst on raw and returns the time read
// just before the syscall, as close to the kernel as user space gets (ping
// reads its clock right before sendmsg too): Go's own write path (fd
// locking, address conversion) stays out of the figure. It calls done with
// the result while it still holds the socket's write lock, so no other send
// on the socket comes between.
func sendTimed(raw syscall.RawConn, b []byte, dst netip.Addr, now func() time.Time, done func(error)) (time.Time, error) {
	sa, err := sockaddr(dst)
	if err != nil {
		return time.Time{}, err
	}
	var sentAt time.Time
	var serr error
	werr := raw.Write(func(fd uintptr) bool {
		sentAt = now()
		serr = unix.Sendto(int(fd), b, 0, sa)
		if errors.Is(serr, unix.EAGAIN) {
			return false // wait until writable, then retry
		}
		done(serr)
		return true
	})
	if werr != nil {
		return time.Time{}, werr
	}
	return sentAt, serr
}

// sockaddr returns dst as sendto takes it: sockaddr_in for IPv4 (and
// v4-mapped) addresses, sockaddr_in6 with the zone's index for IPv6 ones.
func sockaddr(dst netip.Addr) (unix.Sockaddr, error) {
	switch {
	case !dst.IsValid():
		return nil, errors.New("no destination address")
	case protoFor(dst) == protoICMP:
		return &unix.SockaddrInet4{Addr: dst.Unmap().As4()}, nil
	}
	zone, err := zoneIndex(dst.Zone())
	if err != nil {
		return nil, err
	}
	return &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: zone}, nil
}

// sendKeyed sends b to dst with sendTimed and returns the OPT_ID key of the
// packet: the socket's count of keys the kernel handed out before it.
func (s *socket) sendKeyed(b []byte, dst netip.Addr, now func() time.Time) (time.Time, uint32, error) {
	var key uint32
	sentAt, err := sendTimed(s.raw, b, dst, now, func(err error) {
		key = s.nextKey.Load()
		if keyTaken(err) {
			s.nextKey.Add(1)
		}
	})
	return sentAt, key, err
}

// keyTaken reports whether a sendto that returned err used up an OPT_ID
// key. The kernel takes the key in ip_append_data, after the route lookup
// and the size checks, and gives it back if building the packet fails
// (EAGAIN, ENOBUFS). Measured on Linux 6.18 (raw ICMP): ENETUNREACH (no
// route), EINVAL (blackhole route), EACCES (prohibit route) and EMSGSIZE
// take none; EPERM, which netfilter (or a cgroup BPF program) returns for a
// packet it drops on output, takes one. A qdisc drop takes one too but
// reports success: without IP_RECVERR raw sockets hide that ENOBUFS.
func keyTaken(err error) bool {
	return err == nil || errors.Is(err, unix.EPERM)
}
