package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// receive is the socket's one reader: it reads echo replies and TX
// timestamps alike. Go lets one goroutine at a time read a descriptor
// (RawConn.Read holds its read lock), and epoll reports a non-empty error
// queue as EPOLLERR, which the netpoller treats as readable, so a single
// RawConn.Read that drains the error queue, then tries a normal read, and
// waits only when both are empty, sees everything without a busy loop.
// Every read has a deadline, so cancellation is seen within readSlice.
func (s *socket) receive(ctx context.Context, cfg Config, in inbox) error {
	raw, err := s.SyscallConn()
	if err != nil {
		return fmt.Errorf("get raw socket: %w", err)
	}
	r := &rawReader{proto: s.family, now: cfg.Now, buf: make([]byte, 65536), ebuf: make([]byte, 64), oob: make([]byte, 512)}
	for ctx.Err() == nil {
		if err := s.SetReadDeadline(time.Now().Add(readSlice)); err != nil {
			return fmt.Errorf("set read deadline: %w", err)
		}
		err := r.read(raw)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		r.handOver(ctx, cfg.RunID, in)
	}
	return ctx.Err()
}

// rawReader holds one RawConn.Read's buffers and results.
type rawReader struct {
	proto          icmpProto
	now            func() time.Time
	buf, ebuf, oob []byte

	stamps []txStamp // read from the error queue
	reply  []byte    // an ICMP message (without IP header), or nil
	at     time.Time // when reply was read
	err    error     // a read error other than EAGAIN
}

// read makes one RawConn.Read and returns its error, or the first error of
// a syscall in it. The RawConn error comes first: after a timeout the
// syscalls' last error is only EAGAIN. If the netpoller refuses to wait, it
// waits with poll(2) instead (see poll).
func (r *rawReader) read(raw syscall.RawConn) error {
	r.stamps, r.reply, r.err = r.stamps[:0], nil, nil
	err := raw.Read(r.readFD)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
		err = r.poll(raw)
	}
	if err != nil {
		return err
	}
	return r.err
}

// poll waits for the socket with poll(2), for at most readSlice, then reads
// as readFD does. It stands in for the netpoller, which fails every read
// with "not pollable" after epoll reported the socket with EPOLLERR alone:
// stamps queued while the send buffer is too full for the socket to be
// writable (a slow qdisc holding probes), until some other event (a reply,
// or writable again) clears that state.
func (r *rawReader) poll(raw syscall.RawConn) error {
	var perr error
	cerr := raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, perr = unix.Poll(fds, int(readSlice/time.Millisecond))
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
func (r *rawReader) readFD(fd uintptr) bool {
	for {
		_, oobn, flags, _, err := unix.Recvmsg(int(fd), r.ebuf, r.oob, unix.MSG_ERRQUEUE)
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
		if st, ok, err := parseTxStamp(r.oob[:oobn]); err == nil && ok && flags&unix.MSG_CTRUNC == 0 {
			r.stamps = append(r.stamps, st)
		}
	}
	n, err := recvIgnoringEINTR(int(fd), r.buf)
	switch {
	case err == nil:
		r.at = r.now()
		r.reply = icmpMessage(r.proto, r.buf[:n])
		return true
	case errors.Is(err, unix.EAGAIN):
		return len(r.stamps) > 0
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

// handOver passes what the last read got to the collector: every stamp,
// and the reply if it is one of this run's.
func (r *rawReader) handOver(ctx context.Context, runID uint64, in inbox) {
	for _, st := range r.stamps {
		select {
		case in.stamps <- st:
		case <-ctx.Done():
			return
		}
	}
	if r.reply == nil {
		return
	}
	if seq, ok := r.proto.matchReply(r.reply, runID); ok {
		select {
		case in.replies <- reply{seq: seq, at: r.at}:
		case <-ctx.Done():
		}
	}
}

// icmpMessage returns the ICMP message in b, read from a raw socket for p.
// Raw IPv4 reads carry the IP header; raw IPv6 reads do not (RFC 3542 3:
// the IPv6 header and extension headers are never passed up).
func icmpMessage(p icmpProto, b []byte) []byte {
	if p == protoICMPv6 {
		return b
	}
	return ipv4Payload(b)
}

// ipv4Payload returns what follows the IPv4 header in b, as net.IPConn's
// ReadFrom does for raw sockets: raw IPv4 reads carry the header. Anything
// that does not look like one is returned whole.
func ipv4Payload(b []byte) []byte {
	if len(b) < 20 || b[0]>>4 != 4 {
		return b
	}
	if l := int(b[0]&0x0f) << 2; l >= 20 && l <= len(b) {
		return b[l:]
	}
	return b
}
