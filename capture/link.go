package capture

import "fmt"

// LinkType says where the frames of a capture point start, which decides
// the offsets the filter and the Decoder use.
type LinkType uint8

// Link types. The zero value is Ethernet, what most capture points are.
const (
	// LinkEthernet frames start with a 14-byte Ethernet header: veth,
	// bridges, VXLAN and Geneve devices, NICs, loopback.
	LinkEthernet LinkType = iota
	// LinkRawIP frames start at the IPv4 or IPv6 header, told apart by the
	// version nibble: tun and WireGuard (ARPHRD_NONE), ipip (ARPHRD_TUNNEL),
	// ip6tnl (ARPHRD_TUNNEL6), sit (ARPHRD_SIT) and ARPHRD_RAWIP devices.
	// Their AF_PACKET SOCK_RAW frames have no link-layer header because the
	// kernel gives these devices no header_ops->create.
	LinkRawIP
)

func (l LinkType) String() string {
	switch l {
	case LinkEthernet:
		return "ethernet"
	case LinkRawIP:
		return "raw-ip"
	}
	return fmt.Sprintf("LinkType(%d)", uint8(l))
}

// Linux device types (if_arp.h), spelled out here because x/sys/unix has
// them only on Linux and LinkTypeOf is plain data mapping.
const (
	arphrdEther    = 1
	arphrdRawIP    = 519
	arphrdTunnel   = 768
	arphrdTunnel6  = 769
	arphrdLoopback = 772
	arphrdSIT      = 776
	arphrdNone     = 0xfffe
)

// LinkTypeOf maps a device type (ARPHRD_*, as in sll_hatype, the sa_family
// of SIOCGIFHWADDR or /sys/class/net/IFACE/type) to the LinkType of its
// AF_PACKET SOCK_RAW frames. Other device types (GRE, InfiniBand, ...) are
// an error: their frames start with headers the filter does not know, so a
// capture there would silently see nothing.
func LinkTypeOf(arphrd uint16) (LinkType, error) {
	switch arphrd {
	case arphrdEther, arphrdLoopback:
		return LinkEthernet, nil
	case arphrdNone, arphrdTunnel, arphrdTunnel6, arphrdSIT, arphrdRawIP:
		return LinkRawIP, nil
	}
	return 0, fmt.Errorf("device type %d (ARPHRD_*) is not supported: neither Ethernet nor raw IP", arphrd)
}
