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

// PathFinder is not supported on this system.
type PathFinder struct{}

// OpenPathFinder is not supported on this system.
func OpenPathFinder(src, node *NetNS) (*PathFinder, error) {
	return nil, unsupported("discover path")
}

// Close does nothing on this system.
func (f *PathFinder) Close() error { return nil }

// CheckPeer is not supported on this system.
func (f *PathFinder) CheckPeer(target netip.Addr) error { return unsupported("check peer") }

// Discover is not supported on this system.
func (f *PathFinder) Discover(target netip.Addr, flow Flow) (*Path, error) {
	return nil, unsupported("discover path")
}
