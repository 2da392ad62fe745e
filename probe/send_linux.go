package probe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sender is a socket's send path: one send's arguments and results,
// which the RawConn callback reads and writes, and the callback itself,
// bound once, so that a send allocates nothing (a closure made per send
// was two heap allocations). mu makes sends of several goroutines take
// turns; a run sends from its one goroutine.
type sender struct {
	mu     sync.Mutex
	s      *socket
	b, oob []byte
	sa     rawSockaddr
	now    func() time.Time
	sentAt time.Time
	key    uint32
	err    error
	fn     func(fd uintptr) bool // send, as a RawConn callback
}

// sendKeyed makes one sendto of b to dst (sendmsg with the run's pinned
// source address as control data, for a raw TCP socket for IPv4: the
// address the SYN's checksum was computed with) and returns the time read
// just before the syscall, as close to the kernel as user space gets
// (ping reads its clock right before sendmsg too): Go's own write path
// (fd locking, address conversion) stays out of the figure. It also
// returns the OPT_ID key of the packet: the socket's count of keys the
// kernel handed out before it, read and counted while the socket's write
// lock is held, so no other send on the socket comes between.
//
// On a socket with IP_RECVERR an ICMP error leaves a pending socket error,
// which the next send would return instead of sending: sendKeyed clears it
// (getsockopt SO_ERROR) before it reads the clock, and sends once more if
// the send still returned one (ECONNREFUSED, an ICMP port unreachable that
// came in between). The ICMP error itself waits on the error queue, where
// the reader takes it.
func (s *socket) sendKeyed(b []byte, dst netip.AddrPort, now func() time.Time) (time.Time, uint32, error) {
	sa, err := sockaddr(dst.Addr(), dst.Port())
	if err != nil {
		return time.Time{}, 0, err
	}
	w := &s.send
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fn == nil {
		w.s, w.fn = s, w.sendFD
	}
	w.b, w.sa, w.now, w.oob = b, sa, now, nil
	if s.tcp != nil {
		w.oob = s.tcp.pktinfo()
	}
	w.sentAt, w.key, w.err = time.Time{}, 0, nil
	werr := s.raw.Write(w.fn)
	sentAt, key, serr := w.sentAt, w.key, w.err
	w.b, w.oob, w.now = nil, nil, nil // nothing of the run's outlives the send
	if werr != nil {
		return time.Time{}, 0, werr
	}
	return sentAt, key, serr
}

// sendFD is the send inside the RawConn callback. It returns false, to
// wait until the socket is writable and try again, on EAGAIN.
func (w *sender) sendFD(fd uintptr) bool {
	var err error
	for try := 0; ; try++ {
		if w.s.recverr {
			clearSockErr(fd) // its value is on the error queue
		}
		w.sentAt = w.now()
		if w.oob == nil {
			err = sendtoNoWait(fd, w.b, &w.sa)
		} else {
			err = sendmsgNoWait(fd, w.b, w.oob, &w.sa)
		}
		if !w.s.recverr || try > 0 || !errors.Is(err, unix.ECONNREFUSED) {
			break
		}
	}
	if errors.Is(err, unix.EAGAIN) {
		return false
	}
	w.err, w.key = err, w.s.nextKey.Load()
	if keyTaken(err) {
		w.s.nextKey.Add(1)
	}
	return true
}

// rawSockaddr is a destination as sendto takes it: a sockaddr_in or a
// sockaddr_in6 in buf, of len bytes. It is built on the stack for each
// send, where a unix.Sockaddr was allocated and converted again.
type rawSockaddr struct {
	buf unix.RawSockaddrInet6 // the larger of the two
	len uint32
}

// sockaddr returns dst and port as sendto takes them: sockaddr_in for
// IPv4 (and v4-mapped) addresses, sockaddr_in6 with the zone's index for
// IPv6 ones. Raw sockets take port 0.
func sockaddr(dst netip.Addr, port uint16) (rawSockaddr, error) {
	var sa rawSockaddr
	switch {
	case !dst.IsValid():
		return sa, errors.New("no destination address")
	case protoFor(dst) == protoICMP:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.buf))
		in.Family, in.Addr = unix.AF_INET, dst.Unmap().As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&in.Port))[:], port)
		sa.len = unix.SizeofSockaddrInet4
		return sa, nil
	}
	zone, err := zoneIndex(dst.Zone())
	if err != nil {
		return sa, err
	}
	sa.buf.Family, sa.buf.Addr, sa.buf.Scope_id = unix.AF_INET6, dst.As16(), zone
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.buf.Port))[:], port)
	sa.len = unix.SizeofSockaddrInet6
	return sa, nil
}

// keyTaken reports whether a sendto that returned err used up an OPT_ID
// key. The kernel takes the key in ip_append_data, after the route lookup
// and the size checks, and gives it back if building the packet fails
// (EAGAIN, ENOBUFS). Measured on Linux 6.18 (raw ICMP): ENETUNREACH (no
// route), EINVAL (blackhole route), EACCES (prohibit route) and EMSGSIZE
// take none; EPERM, which netfilter (or a cgroup BPF program) returns for a
// packet it drops on output, takes one. A qdisc drop takes one too but
// reports success: without IP_RECVERR raw sockets hide that ENOBUFS. With
// IP_RECVERR (the TCP and UDP sockets) a qdisc drop returns ENOBUFS having
// taken a key, which is counted as not taken: a count that lags makes
// later stamps fall before their probe's SentAt and be dropped (missing
// stamps), where one that runs ahead would put them on the wrong probes.
func keyTaken(err error) bool {
	return err == nil || errors.Is(err, unix.EPERM)
}
