package nodestate

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// devices returns the path's devices in this namespace, by index.
func (st *nsState) devices() []LinkRef {
	devs := []LinkRef{}
	for _, i := range slices.Sorted(maps.Keys(st.points)) {
		devs = append(devs, *st.ref(i))
	}
	return devs
}

// takeNeighbours adds neighbours.json: the ARP and NDP entries of the
// path's devices in the namespace. A namespace without a point (the pod's
// in a hostNetwork trace is the node's) still gets the file, empty.
func (s *Snapshot) takeNeighbours(st *nsState) {
	name := st.dir + "/neighbours.json"
	out := Neighbours{NetNS: st.ns.ID(), Devices: st.devices(), Neighbours: []Neighbour{}}
	for _, dev := range out.Devices {
		for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
			neighs, err := topology.RetryDump(func() ([]netlink.Neigh, error) { return st.h.NeighList(dev.Index, family) })
			if err != nil {
				s.gap(name, "", fmt.Errorf("dump %s neighbours of %s in %s: %w", familyName(family), dev.Name, st.ns, err))
				return
			}
			for _, n := range neighs {
				out.Neighbours = append(out.Neighbours, Neighbour{
					Index: n.LinkIndex, Interface: st.names[n.LinkIndex], Family: familyName(family), IP: ipString(n.IP),
					MAC: n.HardwareAddr.String(), State: neighStates(n.State), Flags: bitNames(n.Flags, neighFlags),
				})
			}
		}
	}
	sortNeighbours(out.Neighbours)
	s.addJSON(name, "neighbour (ARP, NDP) entries on the path's devices (ip neigh show dev DEV)", out)
}

// takeFDB adds fdb.json: the bridge FDB entries of the path's devices, and
// of every port of a bridge on the path (where a MAC is learnt is what
// sends a frame to one port or another). The whole table is dumped and
// filtered here: the kernel's own filters differ between versions.
func (s *Snapshot) takeFDB(st *nsState) {
	name := st.dir + "/fdb.json"
	out := FDB{NetNS: st.ns.ID(), Devices: st.devices(), Entries: []FDBEntry{}}
	if len(out.Devices) > 0 {
		fdb, err := topology.RetryDump(func() ([]netlink.Neigh, error) { return st.h.NeighList(0, unix.AF_BRIDGE) })
		if err != nil {
			s.gap(name, "", fmt.Errorf("dump the bridge FDB in %s: %w", st.ns, err))
			return
		}
		for _, n := range fdb {
			_, dev := st.points[n.LinkIndex]
			_, master := st.points[n.MasterIndex]
			if !dev && !(master && n.MasterIndex != 0) {
				continue
			}
			e := FDBEntry{
				Index: n.LinkIndex, Interface: st.names[n.LinkIndex], MAC: n.HardwareAddr.String(), Dst: ipString(n.IP),
				VLAN: n.Vlan, VNI: n.VNI, State: neighStates(n.State), Flags: bitNames(n.Flags, neighFlags),
			}
			if n.MasterIndex != 0 {
				e.Master = st.ref(n.MasterIndex)
			}
			out.Entries = append(out.Entries, e)
		}
	}
	sortFDB(out.Entries)
	s.addJSON(name, "bridge FDB entries on the path's devices and the ports of its bridge (bridge fdb show)", out)
}

var neighFlags = []bitName{
	{netlink.NTF_USE, "use"}, {netlink.NTF_SELF, "self"}, {netlink.NTF_MASTER, "master"}, {netlink.NTF_PROXY, "proxy"},
	{netlink.NTF_EXT_LEARNED, "extern_learn"}, {netlink.NTF_OFFLOADED, "offload"}, {netlink.NTF_STICKY, "sticky"},
	{netlink.NTF_ROUTER, "router"},
}

var neighStateBits = []bitName{
	{netlink.NUD_INCOMPLETE, "incomplete"}, {netlink.NUD_REACHABLE, "reachable"}, {netlink.NUD_STALE, "stale"},
	{netlink.NUD_DELAY, "delay"}, {netlink.NUD_PROBE, "probe"}, {netlink.NUD_FAILED, "failed"},
	{netlink.NUD_NOARP, "noarp"}, {netlink.NUD_PERMANENT, "permanent"},
}

// neighStates names a neighbour state as ip does; none is "none".
func neighStates(state int) []string {
	if state == netlink.NUD_NONE {
		return []string{"none"}
	}
	return bitNames(state, neighStateBits)
}
