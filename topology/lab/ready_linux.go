package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/topology"
)

// linkReadyTimeout bounds the wait for the kernel to bring links up.
const linkReadyTimeout = 5 * time.Second

// waitLinksUp waits until every veth and bridge (if any) of the lab (and of its
// wire) is operationally up. Setting a link up is not enough: until the
// kernel's linkwatch work runs (up to a second later) the device keeps its
// noop qdisc and drops what it transmits. A bridge is hit hardest, since its ARP replies are dropped
// and the first packets to a pod wait a full ARP retransmit (~1 s).
func (l *Lab) waitLinksUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, linkReadyTimeout)
	defer cancel()
	for _, n := range l.Nodes {
		links := []string{UplinkName}
		for _, p := range n.pods() {
			if err := waitUp(ctx, p.NS, p.Name, PodIfName); err != nil {
				return err
			}
			links = append(links, p.HostVeth)
		}
		if br := l.Topology.layout().bridge; br != "" {
			links = append(links, br)
		}
		if err := waitUp(ctx, n.NS, n.Name, links...); err != nil {
			return err
		}
	}
	if e := l.External; e != nil {
		if err := waitUp(ctx, l.Nodes[0].NS, l.Nodes[0].Name, ExternalLink); err != nil {
			return err
		}
		if err := waitUp(ctx, e.NS, e.Name, UplinkName); err != nil {
			return err
		}
	}
	if l.Wire != nil {
		return waitUp(ctx, l.Wire.NS, l.Wire.Name, WireLink1, WireLink2)
	}
	return nil
}

func waitUp(ctx context.Context, ns *topology.NetNS, nsName string, links ...string) error {
	return withHandle(ns, nsName, func(h *netlink.Handle) error {
		for _, name := range links {
			for {
				l, err := h.LinkByName(name)
				if err != nil {
					return fmt.Errorf("read %s in %s: %w", name, nsName, err)
				}
				if l.Attrs().OperState == netlink.OperUp {
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("wait for %s in %s to come up (operstate %s): %w", name, nsName, l.Attrs().OperState, ctx.Err())
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		return nil
	})
}
