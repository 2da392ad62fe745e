//go:build !linux

package probe

import (
	"net"
	"net/netip"
	"time"
)

func writeTimed(conn net.PacketConn, b []byte, dst netip.Addr, now func() time.Time) (time.Time, error) {
	return writeTimedFallback(conn, b, dst, now)
}
