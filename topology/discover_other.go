//go:build !linux

package topology

import "net/netip"

// Discover is not supported on this system.
func Discover(pod, node *NetNS, target netip.Addr) (*Path, error) {
	return nil, unsupported("discover path")
}

// DiscoverFlow is not supported on this system.
func DiscoverFlow(pod, node *NetNS, target netip.Addr, flow Flow) (*Path, error) {
	return nil, unsupported("discover path")
}
