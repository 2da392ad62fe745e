package probe

import (
	"errors"
	"net/netip"

	"github.com/cnitrace/cnitrace/topology"
)

// ListenFor opens the socket Run needs to probe target from inside ns:
// ListenIPv6's for an IPv6 target, Listen's for an IPv4 one (v4-mapped IPv6
// addresses count as IPv4, as Run sends to them over ICMPv4).
func ListenFor(ns *topology.NetNS, target netip.Addr) (Conn, error) {
	switch {
	case !target.IsValid():
		return nil, errors.New("open ICMP socket: no target address")
	case protoFor(target) == protoICMPv6:
		return ListenIPv6(ns)
	}
	return Listen(ns)
}
