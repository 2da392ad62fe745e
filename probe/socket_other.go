//go:build !linux

package probe

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/cnitrace/cnitrace/topology"
)

// ErrNotSupported is returned on systems without Linux network namespaces.
var ErrNotSupported = errors.New("probing from a network namespace is not supported")

// Listen is not supported on this system.
func Listen(ns *topology.NetNS) (Conn, error) {
	return nil, fmt.Errorf("open ICMP socket: %w on %s", ErrNotSupported, runtime.GOOS)
}

// ListenIPv6 is not supported on this system.
func ListenIPv6(ns *topology.NetNS) (Conn, error) {
	return nil, fmt.Errorf("open ICMPv6 socket: %w on %s", ErrNotSupported, runtime.GOOS)
}

func listenTCP(ns *topology.NetNS, cfg Config) (Conn, error) {
	return nil, fmt.Errorf("open TCP socket: %w on %s", ErrNotSupported, runtime.GOOS)
}

func listenUDP(ns *topology.NetNS, target netip.Addr) (Conn, error) {
	return nil, fmt.Errorf("open UDP socket: %w on %s", ErrNotSupported, runtime.GOOS)
}
