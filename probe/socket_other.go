//go:build !linux

package probe

import (
	"errors"
	"fmt"
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
