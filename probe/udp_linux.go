package probe

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/cnitrace/cnitrace/topology"
	"golang.org/x/sys/unix"
)

// listenUDP is Open for UDP: an ordinary UDP socket of target's family,
// bound to an ephemeral port, with IP_RECVERR and TX timestamps.
func listenUDP(ns *topology.NetNS, target netip.Addr) (Conn, error) {
	v6 := protoFor(target) == protoICMPv6
	name, domain := "UDP", unix.AF_INET
	var wildcard unix.Sockaddr = &unix.SockaddrInet4{}
	if v6 {
		name, domain, wildcard = "UDP (IPv6)", unix.AF_INET6, &unix.SockaddrInet6{}
	}
	fd, err := topology.Open(ns, func() (rawFD, error) {
		fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("socket(SOCK_DGRAM): %w", err)
		}
		if err := unix.Bind(fd, wildcard); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind: %w", err)
		}
		return rawFD(fd), nil
	})
	if err != nil {
		return nil, fmt.Errorf("open %s socket in %s: %w", name, ns, err)
	}
	if err := setUDPOptions(int(fd), v6); err != nil {
		fd.Close()
		return nil, fmt.Errorf("set up %s socket in %s: %w", name, ns, err)
	}
	s, err := wrapFD(fd, "udp@"+ns.ID())
	if err != nil {
		return nil, fmt.Errorf("wrap %s socket in %s: %w", name, ns, err)
	}
	s.proto, s.family, s.recverr = UDP, protoICMP, true
	if v6 {
		s.family = protoICMPv6
	}
	return s, nil
}

// setUDPOptions makes room for a burst of replies, asks for ICMP errors
// on the error queue and for TX timestamps (OPT_ID keys from 0).
func setUDPOptions(fd int, v6 bool) error {
	if err := setReceiveBuffer(fd); err != nil {
		return err
	}
	if err := setRecvErr(fd, v6); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txTimestamping); err != nil {
		return fmt.Errorf("set SO_TIMESTAMPING %#x: %w", txTimestamping, err)
	}
	return nil
}

// codecUDP returns the codec of a UDP run of cfg on s.
func (s *socket) codecUDP(cfg Config) (codec, error) {
	if err := s.checkFor(cfg); err != nil {
		return nil, err
	}
	var sport uint16
	if a, ok := s.LocalAddr().(*net.UDPAddr); ok {
		sport = uint16(a.Port)
	}
	return newUDPCodec(cfg, sport), nil
}
