package probe

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// writeTimed sends b to dst and returns the time read just before the
// sendto syscall, as close to the kernel as user space gets (ping reads its
// clock right before sendmsg too). Go's own write path (fd locking, address
// conversion) stays out of the figure. Connections that are not sockets,
// like test fakes, fall back to WriteTo.
func writeTimed(conn net.PacketConn, b []byte, dst netip.Addr, now func() time.Time) (time.Time, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return writeTimedFallback(conn, b, dst, now)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return time.Time{}, err
	}
	sa := &unix.SockaddrInet4{Addr: dst.Unmap().As4()}
	var sentAt time.Time
	var serr error
	werr := raw.Write(func(fd uintptr) bool {
		sentAt = now()
		serr = unix.Sendto(int(fd), b, 0, sa)
		return !errors.Is(serr, unix.EAGAIN) // EAGAIN: wait until writable, then retry
	})
	if werr != nil {
		return time.Time{}, werr
	}
	return sentAt, serr
}
