package probe

import (
	"net"
	"net/netip"
	"time"
)

// writeTimedFallback sends with WriteTo, timing just before it.
func writeTimedFallback(conn net.PacketConn, b []byte, dst netip.Addr, now func() time.Time) (time.Time, error) {
	sentAt := now()
	_, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()})
	return sentAt, err
}
