package nodestate

import (
	"context"
	"fmt"
	"slices"

	"github.com/cnitrace/cnitrace/topology"
)

// Take takes the state of the node's namespace into node/ and of the
// pod's into pod/ (only node/ when they are one, as in a hostNetwork
// trace; a gap says so), then the node's CNI configuration into
// cni/net.d/. In each namespace: links.json, addresses.json, routes.json,
// rules.json, neighbours.json and fdb.json through netlink; sysctls.json
// through /proc/sys; and the output of each ruleset program found under
// the host root (iptables-save.txt, ..., nft-ruleset.txt), run inside
// that namespace, one after the other. It never fails: what it could not
// take is in the snapshot's gaps. ctx ends the programs early.
//
// It needs what entering the namespaces needs (CAP_SYS_ADMIN), and to run
// the programs chrooted to a host root other than /, CAP_SYS_CHROOT; the
// programs themselves need CAP_NET_ADMIN to read the rules.
func Take(ctx context.Context, node, pod *topology.NetNS, o Options) *Snapshot {
	s := &Snapshot{}
	r := newRunner(rootDir(o.HostRoot), o.ProgramTimeout)
	progs := r.locate()
	namespaces := []*nsState{{dir: "node", ns: node, others: []*topology.NetNS{pod}}}
	if pod.Inode() != node.Inode() {
		namespaces = append(namespaces, &nsState{dir: "pod", ns: pod, others: []*topology.NetNS{node}})
	} else {
		s.gap("pod/", fmt.Sprintf("the source netns %s is the node's (a hostNetwork trace): its state is under node/", pod), nil)
	}
	for _, st := range namespaces {
		st.points, st.devNames = pointsIn(o.Path, st.ns)
		s.takeNetNS(ctx, st, r, progs)
	}
	s.takeCNI(r.root)
	return s
}

// takeNetNS takes one namespace's files.
func (s *Snapshot) takeNetNS(ctx context.Context, st *nsState, r *runner, progs []located) {
	h, err := topology.NetlinkHandle(st.ns)
	if err != nil {
		s.gap(st.dir+"/{links,addresses,routes,rules,neighbours,fdb}.json", "", err)
	} else {
		st.h = h
		s.takeNetlink(st)
		h.Close()
	}
	s.takeSysctls(st)
	s.takeRulesets(ctx, r, progs, st.dir, st.ns)
}

// takeSysctls adds sysctls.json, read on a thread inside the namespace.
func (s *Snapshot) takeSysctls(st *nsState) {
	name := st.dir + "/sysctls.json"
	var values map[string]*string
	var errs []error
	err := st.ns.Do(func() error {
		values, errs = readSysctls("/proc/sys", sysctlNames(st.devNames))
		return nil
	})
	if err != nil {
		s.gap(name, "", fmt.Errorf("read sysctls in %s: %w", st.ns, err))
		return
	}
	for _, e := range errs {
		s.gap(name, "", fmt.Errorf("in %s: %w", st.ns, e))
	}
	s.addJSON(name, "the sysctls that change a path's behaviour, for the namespace and each path device; null: absent", Sysctls{NetNS: st.ns.ID(), Sysctls: values})
}

// pointsIn maps the ifindex of every point of path in ns to its ids, and
// returns the names of those devices, as discovery found them.
func pointsIn(path *topology.Path, ns *topology.NetNS) (map[int][]string, []string) {
	points := map[int][]string{}
	var names []string
	if path == nil {
		return points, nil
	}
	for _, pt := range path.Points {
		if pt.NetNS != ns.ID() || slices.Contains(points[pt.Ifindex], pt.ID) {
			continue
		}
		points[pt.Ifindex] = append(points[pt.Ifindex], pt.ID)
		if !slices.Contains(names, pt.Interface) {
			names = append(names, pt.Interface)
		}
	}
	return points, names
}
