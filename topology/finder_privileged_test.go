//go:build linux

package topology_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// netlinkSockets counts this process's open netlink sockets by protocol,
// whatever netns each lives in: the socket fds of /proc/self/fd, asked
// SO_DOMAIN and SO_PROTOCOL.
func netlinkSockets(t *testing.T) map[int]int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := map[int]int{}
	for _, e := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || dom != unix.AF_NETLINK {
			continue
		}
		proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		if err != nil {
			continue
		}
		n[proto]++
	}
	return n
}

// added returns after minus before, per protocol, without zeros.
func added(before, after map[int]int) map[int]int {
	d := map[int]int{}
	for p, n := range after {
		if n != before[p] {
			d[p] = n - before[p]
		}
	}
	return d
}

// TestPrivilegedNetlinkHandleFamilies: a handle asked for NETLINK_ROUTE
// opens that one socket; one asked for nothing opens every family the
// netlink package supports, as before.
func TestPrivilegedNetlinkHandleFamilies(t *testing.T) {
	l := labtest.New(t)
	ns := l.Nodes[0].NS
	for _, tc := range []struct {
		name     string
		families []int
		want     map[int]int
	}{
		{"route only", []int{unix.NETLINK_ROUTE}, map[int]int{unix.NETLINK_ROUTE: 1}},
		{"default", nil, map[int]int{unix.NETLINK_ROUTE: 1, unix.NETLINK_XFRM: 1, unix.NETLINK_NETFILTER: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := netlinkSockets(t)
			h, err := topology.NetlinkHandle(ns, tc.families...)
			if err != nil {
				t.Fatal(err)
			}
			got := added(before, netlinkSockets(t))
			if _, err := h.LinkList(); err != nil {
				t.Errorf("LinkList on the handle: %v", err)
			}
			h.Close()
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NetlinkHandle(%v) opened %v netlink sockets (by protocol), want %v", tc.families, got, tc.want)
			}
			if left := added(before, netlinkSockets(t)); len(left) != 0 {
				t.Errorf("after Close, %v netlink sockets (by protocol) are still open", left)
			}
		})
	}
}

// TestPrivilegedPathFinder: a PathFinder opens one route socket per
// namespace and one conntrack socket, and nothing more for CheckPeer and
// Discover; its path and its verdicts are those of CheckPeer and
// DiscoverFlow, which open their own.
func TestPrivilegedPathFinder(t *testing.T) {
	l := labtest.New(t)
	pod, node := l.Nodes[0].Pod.NS, l.Nodes[0].NS
	target := l.Nodes[1].Pod.Addr
	want, err := topology.DiscoverFlow(pod, node, target, topology.Flow{})
	if err != nil {
		t.Fatal(err)
	}

	before := netlinkSockets(t)
	f, err := topology.OpenPathFinder(pod, node)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.CheckPeer(target); err != nil {
		t.Errorf("CheckPeer(%s) = %v, want nil", target, err)
	}
	got, err := f.Discover(target, topology.Flow{})
	if err != nil {
		t.Fatal(err)
	}
	if opened, wantOpened := added(before, netlinkSockets(t)), map[int]int{unix.NETLINK_ROUTE: 2, unix.NETLINK_NETFILTER: 1}; !reflect.DeepEqual(opened, wantOpened) {
		t.Errorf("a PathFinder that checked and discovered holds %v netlink sockets (by protocol), want %v", opened, wantOpened)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PathFinder.Discover = %+v, want DiscoverFlow's %+v", got, want)
	}
	own := l.Nodes[0].Pod.Addr
	var np *topology.NotPeerError
	if err := f.CheckPeer(own); !errors.As(err, &np) || np.What != "an address of" {
		t.Errorf("CheckPeer(%s), the pod's own address = %v, want a *NotPeerError: an address of", own, err)
	}
	// The route CheckPeer looked up is the last target's: Discover of
	// another asks again, and finds its own path.
	if p, err := f.Discover(target, topology.Flow{}); err != nil || !reflect.DeepEqual(p, want) {
		t.Errorf("Discover(%s) after CheckPeer(%s) = %+v, %v; want %+v", target, own, p, err, want)
	}
	f.Close()
	if left := added(before, netlinkSockets(t)); len(left) != 0 {
		t.Errorf("after Close, %v netlink sockets (by protocol) are still open", left)
	}
}

// TestPrivilegedPathFinderFromNode: from the node itself, one route
// socket serves both ends.
func TestPrivilegedPathFinderFromNode(t *testing.T) {
	l := labtest.New(t)
	node := l.Nodes[0].NS
	target := l.Nodes[1].Pod.Addr
	want, err := topology.DiscoverFlow(node, node, target, topology.Flow{})
	if err != nil {
		t.Fatal(err)
	}
	before := netlinkSockets(t)
	f, err := topology.OpenPathFinder(node, node)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Discover(target, topology.Flow{})
	if err != nil {
		t.Fatal(err)
	}
	if opened, wantOpened := added(before, netlinkSockets(t)), map[int]int{unix.NETLINK_ROUTE: 1, unix.NETLINK_NETFILTER: 1}; !reflect.DeepEqual(opened, wantOpened) {
		t.Errorf("a PathFinder from the node holds %v netlink sockets (by protocol), want %v", opened, wantOpened)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PathFinder.Discover = %+v, want DiscoverFlow's %+v", got, want)
	}
}
