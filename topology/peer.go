package topology

import (
	"fmt"
	"net/netip"
)

// NotPeerError is returned when a target cannot be the peer of a probe
// from the namespace it was looked up in: the kernel there takes it for
// one of its own addresses, or for a broadcast or multicast address, so a
// probe to it never crosses a path to one other host. The command treats
// it as a mistake in what the user asked (an exit code of 2).
type NotPeerError struct {
	Target netip.Addr
	NetNS  string // where the kernel said so, in readlink form
	What   string // what the address is there: "an address of", "a broadcast address in", ...
}

func (e *NotPeerError) Error() string {
	return fmt.Sprintf("%s is %s %s, not a peer", e.Target, e.What, e.NetNS)
}
