package topology

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// PathFinder holds what checking a target and discovering the path to it
// from one source namespace through one node takes, opened once: a
// NETLINK_ROUTE handle in each namespace (one when the source is the
// node) and a conntrack socket in the node's, each namespace entered once
// for all of them. CheckPeer and Discover then open nothing more but the
// node's sysctl files, and Discover asks again nothing CheckPeer asked.
// A short trace pays every namespace switch and socket set-up from cold
// caches, so this is where its start-up goes (docs/netns.md).
//
// Make one with OpenPathFinder and Close it when done. It is not safe for
// concurrent use.
type PathFinder struct {
	src, node     *NetNS
	srcNL, nodeNL *netlink.Handle // the same handle when src is node
	ct            *Conntrack      // nil when it could not be opened: ctErr says why
	ctErr         error
	// routes is src's route lookup of routesTo, as CheckPeer made it.
	routesTo netip.Addr
	routes   []netlink.Route
}

// nodeSockets is what OpenPathFinder creates in the node namespace with
// one Open; ct is nil when its socket could not be created (ctErr).
type nodeSockets struct {
	h     nlHandle
	ct    *nl.NetlinkSocket
	ctErr error
}

func (s nodeSockets) Close() error {
	s.h.Close()
	if s.ct != nil {
		s.ct.Close()
	}
	return nil
}

// OpenPathFinder opens the handles a PathFinder from src through node
// uses. A conntrack socket that cannot be created fails no layout that
// does not read conntrack (a macvlan pod's): Discover reports it where it
// reads the table, as OpenConntrack's error.
func OpenPathFinder(src, node *NetNS) (*PathFinder, error) {
	f := &PathFinder{src: src, node: node}
	if src.Inode() != node.Inode() {
		h, err := NetlinkHandle(src, unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		f.srcNL = h
	}
	s, err := Open(node, func() (nodeSockets, error) {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nodeSockets{}, NeedsCapability(err, "CAP_NET_ADMIN")
		}
		ct, ctErr := nl.Subscribe(unix.NETLINK_NETFILTER) // no groups: a plain request socket
		return nodeSockets{h: nlHandle{h}, ct: ct, ctErr: ctErr}, nil
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open netlink in %s: %w", node, err)
	}
	f.nodeNL = s.h.Handle
	if f.srcNL == nil {
		f.srcNL = f.nodeNL
	}
	if s.ct != nil {
		f.ct = &Conntrack{sock: &nl.SocketHandle{Socket: s.ct}}
	} else {
		f.ctErr = fmt.Errorf("open conntrack netlink socket in %s: %w", node, s.ctErr)
	}
	return f, nil
}

// Close releases the handles. It is safe to call more than once.
func (f *PathFinder) Close() error {
	if f.srcNL != nil && f.srcNL != f.nodeNL {
		f.srcNL.Close()
	}
	if f.nodeNL != nil {
		f.nodeNL.Close()
	}
	f.srcNL, f.nodeNL = nil, nil
	return f.ct.Close()
}

// CheckPeer is the package's CheckPeer from f's source namespace. Discover
// takes the pod's route to target from this lookup rather than asking the
// kernel again.
func (f *PathFinder) CheckPeer(target netip.Addr) error {
	routes, err := f.srcNL.RouteGet(target.AsSlice())
	f.routesTo, f.routes = target, nil
	if err == nil {
		f.routes = routes
	}
	return checkRoutes(f.src, target, routes, err)
}

// Discover is DiscoverFlow from f's source through its node.
func (f *PathFinder) Discover(target netip.Addr, flow Flow) (*Path, error) {
	d := discovery{pod: f.src, node: f.node, podNL: f.srcNL, nodeNL: f.nodeNL, target: target, dest: target, flow: flow, ct: f.ct, ctErr: f.ctErr}
	if f.routes != nil && f.routesTo == target {
		d.podRoutes = f.routes
	}
	if f.src.Inode() == f.node.Inode() {
		return d.fromNode()
	}
	return d.fromPod()
}
