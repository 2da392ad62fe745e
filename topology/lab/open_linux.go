package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/topology"
)

// Open opens the standing lab called name, built by Up in this process or
// another (`cnitrace-lab up`), to change its faults (SetFaults), run
// commands in it or trace across it. It returns an error wrapping ErrNoLab
// when a namespace of the lab is missing.
//
// The lab is borrowed: its Close releases the handles and stops a delay
// line SetFaults started in this process, but removes nothing and leaves
// a background delay line running; Down removes the lab.
func Open(name string) (_ *Lab, err error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	l := &Lab{Name: name, run: runState{borrowed: true}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	dual := false
	for i := 1; i <= nodeCount; i++ {
		n := newNode(name, i)
		l.Nodes = append(l.Nodes, n)
		if n.NS, err = openLabNS(name, n.NSPath); err != nil {
			return nil, err
		}
		if i == 1 {
			if l.Layout, err = n.detectLayout(); err != nil {
				return nil, err
			}
			if dual, err = n.detectIPv6(l.Layout.wiring()); err != nil {
				return nil, err
			}
		}
		n.planIPv6(dual)
		for _, p := range n.pods() {
			if p.NS, err = openLabNS(name, p.NSPath); err != nil {
				return nil, err
			}
			if p.HostVeth, err = n.findHostVeth(l.Layout.wiring(), p); err != nil {
				return nil, err
			}
		}
	}
	if ext := filepath.Join(NamedNetNSDir, extNSName(name)); pinned(ext) {
		e := &External{Name: extNSName(name), NSPath: ext, Addr: ExternalAddr}
		if e.NS, err = openLabNS(name, ext); err != nil {
			return nil, err
		}
		l.External = e
	}
	if fi, err := os.Stat(RunDir(name)); err == nil && fi.IsDir() {
		l.Backends = true
	}
	w := newWire(name)
	if pinned(w.NSPath) {
		if w.NS, err = openLabNS(name, w.NSPath); err != nil {
			return nil, err
		}
		l.Wire = w
	}
	return l, nil
}

func openLabNS(lab, path string) (*topology.NetNS, error) {
	ns, err := topology.OpenNetNS(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open lab %s: %w (%s is missing)", lab, ErrNoLab, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open lab %s: %w", lab, err)
	}
	return ns, nil
}

// detectLayout tells the layout of a standing lab by its node: a node
// with the bridge BridgeName is flannel's, one without is routed.
func (n *Node) detectLayout() (Layout, error) {
	t := LayoutRouted
	err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		_, err := h.LinkByName(BridgeName)
		var notFound netlink.LinkNotFoundError
		switch {
		case err == nil:
			t = LayoutFlannel
		case !errors.As(err, &notFound):
			return fmt.Errorf("look up %s in %s: %w", BridgeName, n.Name, err)
		}
		return nil
	})
	return t, err
}

// detectIPv6 tells whether a standing lab of layout lay is dual-stack: one
// whose node's VXLAN device has the IPv6 VTEP address (a lab built before
// its layout had IPv6 has not).
func (n *Node) detectIPv6(lay wiring) (bool, error) {
	dual := false
	err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		vx, err := h.LinkByName(lay.vxlan)
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", lay.vxlan, n.Name, err)
		}
		addrs, err := h.AddrList(vx, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("list the IPv6 addresses of %s in %s: %w", lay.vxlan, n.Name, err)
		}
		for _, a := range addrs {
			dual = dual || a.IP.Equal(n.vtepAddr6().AsSlice())
		}
		return nil
	})
	return dual, err
}

// findHostVeth returns the name of the host side of p's veth: the veth
// named with lay's prefix, enslaved to lay's bridge (if any), whose peer is
// in p's namespace.
func (n *Node) findHostVeth(lay wiring, p *Pod) (string, error) {
	var name string
	err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		podID, err := h.GetNetNsIdByFd(p.NS.Fd())
		if err != nil {
			return fmt.Errorf("look up the id of %s in %s: %w", p.Name, n.Name, err)
		}
		master := 0
		if lay.bridge != "" {
			br, err := h.LinkByName(lay.bridge)
			if err != nil {
				return fmt.Errorf("look up %s in %s: %w", lay.bridge, n.Name, err)
			}
			master = br.Attrs().Index
		}
		links, err := h.LinkList()
		for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 5; try++ {
			links, err = h.LinkList()
		}
		if err != nil {
			return fmt.Errorf("list links in %s: %w", n.Name, err)
		}
		for _, l := range links {
			a := l.Attrs()
			if l.Type() == "veth" && a.MasterIndex == master && strings.HasPrefix(a.Name, lay.vethPrefix) && a.NetNsID == podID {
				name = l.Attrs().Name
				return nil
			}
		}
		return fmt.Errorf("find the veth of %s in %s: none named %s* with its peer there is a port of %q", p.Name, n.Name, lay.vethPrefix, lay.bridge)
	})
	return name, err
}

// pinned reports whether a namespace is pinned at path.
func pinned(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
