package probe

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// read is the socket's side of the receive loop: one read of echo replies
// and TX timestamps alike. Go lets one goroutine at a time read a descriptor
// (RawConn.Read holds its read lock), and epoll reports a non-empty error
// queue as EPOLLERR, which the netpoller treats as readable, so a single
// RawConn.Read that drains the error queue, then tries a normal read, and
// waits only when both are empty, sees everything without a busy loop. If
// the netpoller refuses to wait, it waits with poll(2) instead (see
// fdReader.poll). The RawConn error comes first: after a timeout the
// syscalls' last error is only EAGAIN.
func (s *socket) read(rx *rxBatch, deadline time.Time, now func() time.Time) error {
	if err := s.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	r := &fdReader{rx: rx, now: now}
	err := s.raw.Read(r.readFD)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
		err = r.poll(s.raw, time.Until(deadline))
	}
	if err != nil {
		return err
	}
	return r.err
}

// fdReader is one read's state inside the RawConn callbacks.
type fdReader struct {
	rx  *rxBatch
	now func() time.Time
	err error // a syscall error other than EAGAIN
}

// poll waits for the socket with poll(2), for at most wait, then reads as
// readFD does. It stands in for the netpoller, which fails every read with
// "not pollable" after epoll reported the socket with EPOLLERR alone:
// stamps queued while the send buffer is too full for the socket to be
// writable (a slow qdisc holding probes), until some other event (a reply,
// or writable again) clears that state.
func (r *fdReader) poll(raw syscall.RawConn, wait time.Duration) error {
	ms := int(max(wait, 0).Milliseconds()) + 1 // round up: 0 would not wait at all
	var perr error
	cerr := raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, perr = unix.Poll(fds, ms)
		switch {
		case errors.Is(perr, unix.EINTR):
			perr = nil
		case perr == nil && fds[0].Revents&unix.POLLNVAL != 0:
			perr = unix.EBADF
		case perr == nil:
			r.readFD(fd)
		}
	})
	if cerr != nil {
		return cerr
	}
	if perr != nil {
		return fmt.Errorf("poll: %w", perr)
	}
	return nil
}

// readFD is the RawConn.Read callback. It returns false, to wait for the
// socket to become readable, only when the error queue and the receive
// queue were both empty.
func (r *fdReader) readFD(fd uintptr) bool {
	rx := r.rx
	for {
		// OPT_TSONLY: a stamp carries no packet, only control data.
		_, oobn, flags, _, err := unix.Recvmsg(int(fd), rx.buf, rx.oob, unix.MSG_ERRQUEUE)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			r.err = fmt.Errorf("read error queue: %w", err)
			return true
		}
		// A stamp the kernel could not fit, or a message that is not a
		// stamp, is skipped: its probe keeps zero stamp fields.
		if st, ok, err := parseTxStamp(rx.oob[:oobn]); err == nil && ok && flags&unix.MSG_CTRUNC == 0 {
			rx.stamps = append(rx.stamps, st)
		}
	}
	n, err := recvIgnoringEINTR(int(fd), rx.buf)
	switch {
	case err == nil:
		rx.msg, rx.at = rx.buf[:n], r.now()
		return true
	case errors.Is(err, unix.EAGAIN):
		return len(rx.stamps) > 0
	default:
		r.err = fmt.Errorf("recvfrom: %w", err)
		return true
	}
}

func recvIgnoringEINTR(fd int, b []byte) (int, error) {
	for {
		n, _, err := unix.Recvfrom(fd, b, 0)
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}
