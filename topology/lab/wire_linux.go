package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// newWire plans the wire namespace of lab: names only, no handle yet.
func newWire(lab string) *Wire {
	return &Wire{Name: wireNSName(lab), NSPath: filepath.Join(NamedNetNSDir, wireNSName(lab))}
}

// connectNodes joins the nodes' uplinks: through the wire namespace when
// the lab has one, else with one veth pair.
func (l *Lab) connectNodes() error {
	if l.Wire == nil {
		return connectUplink(l.Nodes[0], l.Nodes[1])
	}
	return l.connectWire()
}

// connectWire joins each node's uplink to its link in the wire namespace
// (node 1's eth0 to WireLink1, node 2's to WireLink2), with the same
// addresses as the direct pair, so VXLAN and discovery see no difference.
// It turns off the offloads that would hand the delay line frames with
// partial checksums or larger than the MTU, and IPv6 in the wire namespace,
// whose links would otherwise send their own router solicitations.
func (l *Lab) connectWire() error {
	w := l.Wire
	if err := disableIPv6(w.NS, w.Name); err != nil {
		return err
	}
	links := []string{WireLink1, WireLink2}
	for i, n := range l.Nodes {
		err := withHandle(n.NS, n.Name, func(h *netlink.Handle) error {
			veth := &netlink.Veth{
				LinkAttrs:     netlink.LinkAttrs{Name: UplinkName},
				PeerName:      links[i],
				PeerNamespace: netlink.NsFd(w.NS.Fd()),
			}
			if err := h.LinkAdd(veth); err != nil {
				return fmt.Errorf("create uplink veth %s (peer %s in %s) in %s: %w", UplinkName, links[i], w.Name, n.Name, err)
			}
			return n.configureUplink(h)
		})
		if err != nil {
			return err
		}
		if err := disableOffloads(n.NS, n.Name, UplinkName); err != nil {
			return err
		}
	}
	err := withHandle(w.NS, w.Name, func(h *netlink.Handle) error {
		for _, link := range links {
			if err := linkUp(h, link, w.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return disableOffloads(w.NS, w.Name, links...)
}

// rewire puts the wire between the nodes (wire true) or takes it out
// again, on a standing lab: it deletes both nodes' VXLAN device and uplink
// and builds them anew, since a VXLAN device goes with its underlay
// device. The delay line must be stopped first.
func (l *Lab) rewire(ctx context.Context, wire bool) error {
	for _, n := range l.Nodes {
		if err := deleteLinks(n.NS, n.Name, l.Layout.wiring().vxlan, UplinkName); err != nil {
			return err
		}
	}
	if wire {
		l.Wire = newWire(l.Name)
		ns, err := l.newNetNS(l.Wire.Name)
		if err != nil {
			l.Wire = nil
			return err
		}
		l.Wire.NS = ns
	} else if err := l.removeWire(); err != nil {
		return err
	}
	if err := l.connectNodes(); err != nil {
		return err
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	if err := l.setupOverlay(n1, n2); err != nil {
		return err
	}
	if err := l.setupOverlay(n2, n1); err != nil {
		return err
	}
	return l.waitLinksUp(ctx)
}

// removeWire closes and unpins the wire namespace, if the lab has one.
func (l *Lab) removeWire() error {
	if l.Wire == nil {
		return nil
	}
	errs := []error{closeNS(l.Wire.NS, l.Wire.Name), RemoveNamedNetNS(NamedNetNSDir, l.Wire.Name)}
	l.created = slices.DeleteFunc(l.created, func(ns string) bool { return ns == l.Wire.Name })
	l.Wire = nil
	return errors.Join(errs...)
}

// deleteLinks deletes the named links in ns, if they exist.
func deleteLinks(ns *topology.NetNS, nsName string, names ...string) error {
	return withHandle(ns, nsName, func(h *netlink.Handle) error {
		for _, name := range names {
			link, err := h.LinkByName(name)
			var notFound netlink.LinkNotFoundError
			if errors.As(err, &notFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("look up %s in %s: %w", name, nsName, err)
			}
			if err := h.LinkDel(link); err != nil {
				return fmt.Errorf("delete %s in %s: %w", name, nsName, err)
			}
		}
		return nil
	})
}

// disableIPv6 turns IPv6 off for every link of ns, present and future.
// A kernel without IPv6 has nothing to turn off.
func disableIPv6(ns *topology.NetNS, nsName string) error {
	err := ns.Do(func() error {
		for _, conf := range []string{"all", "default"} {
			err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1\n"), 0o644)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("disable IPv6 in %s: %w", nsName, err)
	}
	return nil
}

// fdCloser lets a plain file descriptor be created with topology.Open.
type fdCloser int

func (fd fdCloser) Close() error { return unix.Close(int(fd)) }

// disableOffloads turns off TX checksumming, TSO, GSO and GRO on links in
// ns, with the SIOCETHTOOL ioctl ethtool -K uses: the delay line must get
// whole frames with their checksums filled in, since it sends them on as
// they are. It checks TX checksumming is off afterwards.
func disableOffloads(ns *topology.NetNS, nsName string, links ...string) error {
	sock, err := topology.Open(ns, func() (fdCloser, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return fdCloser(fd), err
	})
	if err != nil {
		return fmt.Errorf("open ethtool socket in %s: %w", nsName, err)
	}
	defer sock.Close()
	offloads := []struct {
		cmd  uint32
		name string
	}{
		{unix.ETHTOOL_STXCSUM, "tx-checksumming"},
		{unix.ETHTOOL_STSO, "tcp-segmentation-offload"},
		{unix.ETHTOOL_SGSO, "generic-segmentation-offload"},
		{unix.ETHTOOL_SGRO, "generic-receive-offload"},
	}
	for _, link := range links {
		for _, o := range offloads {
			if err := ethtool(int(sock), link, &ethtoolValue{cmd: o.cmd}); err != nil {
				return fmt.Errorf("turn off %s on %s in %s: %w", o.name, link, nsName, err)
			}
		}
		v := ethtoolValue{cmd: unix.ETHTOOL_GTXCSUM}
		if err := ethtool(int(sock), link, &v); err != nil || v.data != 0 {
			return fmt.Errorf("check tx-checksumming on %s in %s: still %d (%v)", link, nsName, v.data, err)
		}
	}
	return nil
}

// ethtoolValue is the kernel's struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ifreqData is the kernel's struct ifreq with ifr_data set (40 bytes).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// ethtool runs the SIOCETHTOOL command in v on link, through fd.
func ethtool(fd int, link string, v *ethtoolValue) error {
	if len(link) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", link)
	}
	ifr := ifreqData{data: unsafe.Pointer(v)}
	copy(ifr.name[:], link)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("ioctl SIOCETHTOOL: %w", capHint(errno, "CAP_NET_ADMIN"))
	}
	return nil
}
