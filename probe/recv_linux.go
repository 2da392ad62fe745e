package probe

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// read is the socket's side of the receive loop: one read of echo replies
// and TX timestamps alike. Go lets one goroutine at a time read a
// descriptor, and the run is that goroutine: each read drains the error
// queue, then tries one recvfrom (readFD, in RawConn.Control). epoll
// reports a non-empty error queue as EPOLLERR, so a stamp wakes a wait
// too, with no busy loop; and the socket is never waited for in the
// netpoller itself, which failed every read with "not pollable" after
// epoll reported the socket with EPOLLERR alone (stamps queued while the
// send buffer was too full for the socket to be writable), so the poll(2)
// that stood in for it then is gone.
//
// With a zero deadline (or one that has passed) it reads once and never
// waits: what a send just queued costs no wake-up and no timer. With a
// deadline ahead it waits first, for the socket or the deadline,
// whichever comes first (waiter: the socket and a timerfd in an epoll set
// of their own, waiting in the netpoller), and reads once the socket is
// ready. A read before the wait would be redundant: the epoll set is
// level-triggered, so the waiter's first look (epoll_wait with no
// timeout, before it parks) reports the socket ready at once when it
// holds anything, datagram, stamp or ICMP error, read or not since the
// last read, and anything that comes later wakes the wait. It saved a
// recvmmsg and a recvfrom, both EAGAIN, before every wait, and cost an
// armed timer only when something was already queued.
//
// A read allocates nothing: the reader, its callbacks and its buffers are
// the socket's, made at the first read (one run at a time reads a socket).
func (s *socket) read(rx *rxBatch, deadline time.Time, now func() time.Time) error {
	if s.rd == nil {
		s.rd = newFDReader()
	}
	r := s.rd
	r.rx, r.now, r.err = rx, now, nil
	defer func() { r.rx, r.now = nil, nil }() // nothing of the run's outlives it
	var d time.Duration
	if !deadline.IsZero() {
		d = time.Until(deadline)
	}
	if d <= 0 {
		if err := s.raw.Control(r.readOnce); err != nil {
			return err
		}
		if !r.got && !deadline.IsZero() {
			return os.ErrDeadlineExceeded
		}
		return r.err
	}
	if r.wait == nil {
		w, err := s.waiter()
		if err != nil {
			return err
		}
		r.wait = w // closed with the socket, after which its waits fail
	}
	for ; ; d = time.Until(deadline) {
		ready, err := r.wait.wait(d)
		if err != nil {
			return err
		}
		if !ready {
			return os.ErrDeadlineExceeded
		}
		if err := s.raw.Control(r.readOnce); err != nil {
			return err
		}
		if r.got {
			return r.err
		}
	}
}

// waiter returns the socket's waiter, made at the first wait.
func (s *socket) waiter() (*waiter, error) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	if s.wait != nil {
		return s.wait, nil
	}
	var werr error
	if err := s.raw.Control(func(fd uintptr) { s.wait, werr = newWaiter(int(fd)) }); err != nil {
		return nil, err
	}
	return s.wait, werr
}

// SetReadDeadline sets the socket's read deadline; one that has passed
// also ends a wait of Run's in progress at once (Run wakes itself so when
// its ctx is done).
func (s *socket) SetReadDeadline(t time.Time) error {
	err := s.PacketConn.SetReadDeadline(t)
	if !t.IsZero() && !t.After(time.Now()) { // a zero t clears the deadline
		s.waitMu.Lock()
		if s.wait != nil {
			s.wait.wake()
		}
		s.waitMu.Unlock()
	}
	return err
}

// fdReader is the socket's reader: one read's state inside the RawConn
// callback, and the buffers it reads into, kept for every read.
type fdReader struct {
	rx  *rxBatch
	now func() time.Time
	err error // a syscall error other than EAGAIN
	got bool  // readFD's result: something was read
	// readOnce is readFD as a RawConn callback, bound once: a closure
	// made per read was a heap allocation per read.
	readOnce func(fd uintptr)
	errq     errQueue              // the buffers for the error queue
	wait     *waiter               // the socket's, once a read has waited
	name     unix.RawSockaddrInet6 // recvfrom's sender (room for a sockaddr_in too)
}

func newFDReader() *fdReader {
	r := new(fdReader)
	r.readOnce = func(fd uintptr) { r.got = r.readFD(fd) }
	return r
}

// readFD reads the error queue and then at most one datagram. It returns
// false, to wait for the socket to become readable, only when the error
// queue and the receive queue were both empty.
func (r *fdReader) readFD(fd uintptr) bool {
	rx := r.rx
	for pending := 0; ; pending++ {
		if !r.drainErrQueue(fd) {
			return true
		}
		n, from, err := recvfrom(int(fd), rx.buf, &r.name)
		switch {
		case err == nil:
			rx.msg, rx.from, rx.at = rx.buf[:n], from, r.now()
			return true
		case errors.Is(err, unix.EAGAIN):
			return len(rx.stamps) > 0 || len(rx.errs) > 0
		case pendingError(err) && pending < 2:
			// An ICMP error came in since the error queue was drained
			// (IP_RECVERR): it is on the error queue now.
		case pendingError(err):
			return true
		default:
			r.err = fmt.Errorf("recvfrom: %w", err)
			return true
		}
	}
}

// drainErrQueue reads the error queue until it is empty, errBatch
// messages a syscall (recvmmsg), adding the TX stamps and ICMP errors it
// holds to r.rx. It returns false, with r.err set, when a read failed.
func (r *fdReader) drainErrQueue(fd uintptr) bool {
	for {
		msgs, empty, err := r.errq.read(int(fd))
		if err != nil {
			r.err = fmt.Errorf("read error queue: %w", err)
			return false
		}
		for _, m := range msgs {
			r.addErrMsg(m)
		}
		if empty {
			return true
		}
	}
}

// addErrMsg adds what one error-queue message says to r.rx: a TX stamp,
// or an ICMP error with the probe it quotes (copied out of the buffers,
// into rx's).
// A message the kernel could not fit is skipped (its probe keeps zero
// stamp fields), and so is one that is neither.
func (r *fdReader) addErrMsg(m errMsg) {
	if m.flags&unix.MSG_CTRUNC != 0 {
		return
	}
	// OPT_TSONLY: a stamp carries no packet, only control data.
	if st, ok, err := parseTxStamp(m.oob); err == nil && ok {
		r.rx.stamps = append(r.rx.stamps, st)
	} else if e, ok := parseICMPErr(m.oob, m.name); ok {
		e.data, e.at = r.rx.keep(m.data), r.now()
		r.rx.errs = append(r.rx.errs, e)
	}
}

// pendingError reports whether a recvfrom error is a pending socket error
// an ICMP error left (sockets with IP_RECVERR: the TCP and UDP ones), not
// a failure of the socket.
func pendingError(err error) bool {
	for _, e := range []error{unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENONET, unix.EPROTO, unix.EMSGSIZE, unix.EACCES, unix.ENOPROTOOPT, unix.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// recvfrom reads one datagram into b without waiting, retrying on EINTR,
// and returns its length and sender; the sender's sockaddr is read into
// name, where unix.Recvfrom allocated one per datagram.
func recvfrom(fd int, b []byte, name *unix.RawSockaddrInet6) (int, netip.Addr, error) {
	namelen := uint32(unsafe.Sizeof(*name))
	n, err := noWait(func() (uintptr, unix.Errno) {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(&namelen)))
		return r, e
	})
	if err != nil {
		return 0, netip.Addr{}, err
	}
	return int(n), rawAddr(name, namelen), nil
}

// rawAddr returns the address in the sockaddr the kernel wrote (n bytes),
// or an invalid one.
func rawAddr(raw *unix.RawSockaddrInet6, n uint32) netip.Addr {
	switch {
	case n >= unix.SizeofSockaddrInet4 && raw.Family == unix.AF_INET:
		return netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(raw)).Addr)
	case n >= unix.SizeofSockaddrInet6 && raw.Family == unix.AF_INET6:
		return netip.AddrFrom16(raw.Addr)
	}
	return netip.Addr{}
}

// sockaddrAddr returns the address in sa, or an invalid one.
func sockaddrAddr(sa unix.Sockaddr) netip.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr)
	}
	return netip.Addr{}
}
