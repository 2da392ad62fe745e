package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/topology"
)

// Open opens the standing lab called name, built by Up in this process or
// another (`cnitrace lab up`), to change its faults (SetFaults), run
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
	for i := 1; i <= nodeCount; i++ {
		n := newNode(name, i)
		l.Nodes = append(l.Nodes, n)
		if n.NS, err = openLabNS(name, n.NSPath); err != nil {
			return nil, err
		}
		if n.Pod.NS, err = openLabNS(name, n.Pod.NSPath); err != nil {
			return nil, err
		}
		if n.Pod.HostVeth, err = n.findHostVeth(); err != nil {
			return nil, err
		}
	}
	w := newWire(name)
	if _, err := os.Lstat(w.NSPath); err == nil {
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

// findHostVeth returns the name of the veth enslaved to the node's bridge:
// the host side of its pod.
func (n *Node) findHostVeth() (string, error) {
	var name string
	err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
		br, err := h.LinkByName(BridgeName)
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", BridgeName, n.Name, err)
		}
		links, err := h.LinkList()
		for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 5; try++ {
			links, err = h.LinkList()
		}
		if err != nil {
			return fmt.Errorf("list links in %s: %w", n.Name, err)
		}
		for _, l := range links {
			if l.Type() == "veth" && l.Attrs().MasterIndex == br.Attrs().Index {
				name = l.Attrs().Name
				return nil
			}
		}
		return fmt.Errorf("find the pod's veth in %s: none is a port of %s", n.Name, BridgeName)
	})
	return name, err
}
