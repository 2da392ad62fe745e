//go:build linux

package capture

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedCaptureRawIPTun captures on a tun device (ARPHRD_NONE: its
// frames start at the IP header, as on ipip and WireGuard devices) in a
// throw-away netns, and writes hand-built packets into it as if they came
// from the wire: the kernel itself runs the raw-IP filter. The ring must
// find the link type by itself; plain IPv4 and IPv6 probes are seen coming
// in and their replies going out; IPIP, Geneve and VXLAN probes are seen
// coming in (the kernel has no such modules and answers with ICMP errors,
// which quote the probe but must not pass); a UDP probe to a closed port
// coming in and the kernel's port unreachable quoting it going out;
// background traffic never.
func TestPrivilegedCaptureRawIPTun(t *testing.T) {
	ns, tun := newTun(t)
	s, err := Start(context.Background(), []Target{{NS: ns, Point: topology.Point{ID: "p0", Interface: "tun0", NetNS: ns.ID()}}},
		Config{Magic: probe.Magic, KeepFrames: true})
	if err != nil {
		t.Fatal(err)
	}
	peer4, peer6 := netip.MustParseAddr("10.97.0.2"), netip.MustParseAddr("fd97::2")
	self4, self6 := netip.MustParseAddr("10.97.0.1"), netip.MustParseAddr("fd97::1")
	packets := []stack{
		echo(8, peer4, self4, probeHi),
		echo(128, peer6, self6, probeHi),
		append(stack{ipLayer(4, peer4, self4)}, echo(8, overlA, overlB, probeHi)...),
		overGeneve(6081, 8, peer4, self4, echo(128, overl6A, overl6B, probeHi)),
		overVXLAN(4789, peer6, self6, echo(8, overlA, overlB, probeHi)),
		echo(8, peer4, self4, probeData(0xdeadbeef, 56)),                                                 // a ping without the magic
		stack{ipLayer(17, peer4, self4), &layers.UDP{SrcPort: 1, DstPort: 9}, gopacket.Payload(probeHi)}, // a UDP probe, to a closed port
		stack{ipLayer(17, peer4, self4), &layers.UDP{SrcPort: 1, DstPort: 9},
			gopacket.Payload(append(make([]byte, 5), probeHi...))}, // UDP with the magic where no probe has it
	}
	for _, p := range packets {
		if _, err := tun.Write(onLinkChecksummed(t, LinkRawIP, p)); err != nil {
			t.Fatalf("write into tun0: %v", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	c, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	checkTunObservations(t, c)
	if n := countICMPErrors(t, tun); n < 5 {
		t.Errorf("the kernel sent %d ICMP errors, want one each for IPIP, Geneve, VXLAN and the two UDP datagrams", n)
	}
}

// countICMPErrors reads what the kernel sent out of tun0 and counts the
// ICMP and ICMPv6 errors (destination unreachable): they quote the probes,
// magic included, and the filter must have kept them out.
func countICMPErrors(t *testing.T, tun *os.File) int {
	t.Helper()
	if err := tun.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var n int
	buf := make([]byte, 2048)
	for {
		m, err := tun.Read(buf)
		if err != nil {
			return n
		}
		p := buf[:m]
		if (p[0]>>4 == 4 && len(p) > 20 && p[9] == 1 && p[20] == 3) || (p[0]>>4 == 6 && len(p) > 40 && p[6] == 58 && p[40] == 1) {
			n++
		}
	}
}

func checkTunObservations(t *testing.T, c *Capture) {
	t.Helper()
	type seen struct {
		dir    topology.Dir
		tunnel string
		proto  Proto
		typ    uint8
	}
	want := map[seen]int{
		{topology.RX, "", ProtoICMP, 8}: 1, {topology.TX, "", ProtoICMP, 0}: 1, // plain IPv4 and its reply
		{topology.RX, "", ProtoICMP, 128}: 1, {topology.TX, "", ProtoICMP, 129}: 1, // plain IPv6 and its reply
		{topology.RX, TunnelIPIP, ProtoICMP, 8}: 1, {topology.RX, TunnelGeneve, ProtoICMP, 128}: 1, {topology.RX, TunnelVXLAN, ProtoICMP, 8}: 1,
		{topology.RX, "", ProtoUDP, 0}: 1, {topology.TX, "", ProtoUnreachable, 3}: 1, // the UDP probe and the port unreachable
	}
	got := map[seen]int{}
	for _, o := range c.Observations {
		got[seen{o.Dir, o.Tunnel, o.Proto, o.ICMPType}]++
		if o.Proto != ProtoICMP && !bytes.Equal(o.Token, probeHi[:TokenLen]) {
			t.Errorf("observation %+v: token % x, want % x", o, o.Token, probeHi[:TokenLen])
		}
		if o.Link != LinkRawIP {
			t.Errorf("observation %+v: link %s, want raw-ip", o, o.Link)
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s tunnel=%q type %d: seen %d times, want %d", k.dir, k.tunnel, k.typ, got[k], n)
		}
	}
	if len(c.Observations) != 9 {
		t.Errorf("got %d observations, want 9: %v", len(c.Observations), got)
	}
	if st := c.Stats[0]; st.Link != LinkRawIP || st.Undecodable != 0 || st.Packets != 9 {
		t.Errorf("got stats %+v, want 9 packets on a raw-ip link, all decodable", st)
	}
}

// newTun creates tun0 (no packet info header) in a fresh netns with
// 10.97.0.1/24 and fd97::1/64, and returns the netns and the tun's fd.
func newTun(t *testing.T) (*topology.NetNS, *os.File) {
	t.Helper()
	labtest.Require(t)
	ns := labtest.NetNS(t, "capt-tun")
	tun, err := topology.Open(ns, func() (*os.File, error) {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		ifr, err := unix.NewIfreq("tun0")
		if err == nil {
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err == nil {
			err = unix.SetNonblock(fd, true) // read with a deadline in the netpoller
		}
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		return os.NewFile(uintptr(fd), "tun0"), nil
	})
	if err != nil {
		t.Skipf("skipping, cannot create a tun device: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName("tun0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.97.0.1/24", "fd97::1/64"} {
		p := netip.MustParsePrefix(a)
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(link, addr); err != nil {
			t.Fatalf("add %s to tun0: %v", a, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	return ns, tun
}

// TestPrivilegedRingLinkType opens rings by index only (the name is then
// looked up with SIOCGIFNAME) and checks the device types found: tun0 is
// raw IP, lo is Ethernet-framed.
func TestPrivilegedRingLinkType(t *testing.T) {
	ns, _ := newTun(t)
	f, err := newFilters(probe.Magic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]LinkType{"tun0": LinkRawIP, "lo": LinkEthernet} {
		idx, err := topology.Open(ns, func() (*indexOf, error) {
			i, err := net.InterfaceByName(name)
			if err != nil {
				return nil, err
			}
			return &indexOf{i.Index}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := openRingIn(ns, topology.Point{ID: "p0", Ifindex: idx.n, NetNS: ns.ID()}, f, geometryFor(Rate{}, 4096))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.link != want {
			t.Errorf("%s: got link %s, want %s", name, r.link, want)
		}
		r.Close()
	}
}

// indexOf carries an ifindex out of topology.Open, which wants a Closer.
type indexOf struct{ n int }

func (indexOf) Close() error { return nil }
