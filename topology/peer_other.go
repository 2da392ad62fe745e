//go:build !linux

package topology

import "net/netip"

// CheckPeer is not supported on this system.
func CheckPeer(src *NetNS, target netip.Addr) error { return unsupported("check peer") }
