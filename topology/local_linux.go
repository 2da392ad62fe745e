package topology

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// local reports whether the node's route r delivers the probes to the
// node itself: the target is one of its addresses (a bridge's gateway
// address, a ptp host veth's, the node's own IP), or an anycast address
// it answers for.
func local(r netlink.Route) bool {
	return r.Type == unix.RTN_LOCAL || r.Type == unix.RTN_ANYCAST
}

// turnInNode ends the path where the requests entered the node, at entry
// (the pod's host veth or its bridge, whose point is the last one added):
// the node's own stack answers them there, and the replies leave by the
// same device. It checks that they do: the node's route back to the pod's
// source address src must leave by entry, or the replies would cross
// points the path does not have.
func (d *discovery) turnInNode(entry netlink.Link, src netip.Addr) error {
	d.turn = TurnNode
	if !src.IsValid() {
		return nil
	}
	routes, err := d.nodeNL.RouteGet(src.AsSlice())
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("find the node's route back to %s, the source of probes it answers itself, in %s: %w", src, d.node, orNoRoute(err))
	}
	if idx := routes[0].LinkIndex; idx != entry.Attrs().Index {
		back := fmt.Sprintf("interface %d", idx)
		if l, err := d.nodeNL.LinkByIndex(idx); err == nil {
			back = l.Attrs().Name + "@" + d.node.String()
		}
		return fmt.Errorf("%s is an address of the node netns %s, which answers the probes entering by %s@%s but sends its replies by %s: %w",
			d.target, d.node, entry.Attrs().Name, d.node, back, ErrUnsupportedLayout)
	}
	return nil
}
