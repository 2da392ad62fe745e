//go:build linux

package capture

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedTransportFilter has the kernel run the filter on a real
// ring: a veth pair l4a/l4b in a throw-away netns, a ring on l4b, and
// every TCP and UDP case (probes, replies, ICMP errors and the background
// most like them, in every encapsulation, over IPv4 and IPv6) injected at
// l4a with an AF_PACKET socket. The ring must deliver exactly the probe
// ones, in order, byte for byte, each decodable. The frames are addressed
// to a MAC that is not l4b's, so the netns' stack drops them
// (PACKET_OTHERHOST) and answers none of them; what l4b sends by itself
// (IPv6 neighbour discovery and MLD) is background too.
func TestPrivilegedTransportFilter(t *testing.T) {
	ns, inject := newInjectPair(t)
	s, err := Start(context.Background(), []Target{{NS: ns, Point: topology.Point{ID: "p0", Interface: "l4b", NetNS: ns.ID()}}},
		Config{Magic: probe.Magic, KeepFrames: true})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	frames := transportFrames()
	for _, f := range frames {
		frame := onLink(t, LinkEthernet, f.stack())
		inject(frame)
		if f.tc.accept {
			want = append(want, frame)
		}
	}
	t.Logf("sent %d frames, %d of them probe packets", len(frames), len(want))
	time.Sleep(50 * time.Millisecond)
	c, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Observations); got != len(want) {
		t.Errorf("the ring delivered %d packets, want the %d probe ones", got, len(want))
	}
	for i, o := range c.Observations {
		if i >= len(want) || !bytes.Equal(o.Frame, want[i]) {
			t.Fatalf("packet %d: % x is not the next probe packet sent", i, o.Frame)
		}
		quotesSYN := o.Proto == ProtoUnreachable && o.TCPSeq == tokISN // with a token if the quote holds it
		if o.Dir != topology.RX || o.Proto == ProtoICMP || (o.Token == nil && o.TCPAck != tokISN+1 && !quotesSYN) {
			t.Errorf("packet %d: %s %s token % x seq %#x ack %#x, want a TCP or UDP probe packet coming in", i, o.Dir, o.Proto, o.Token, o.TCPSeq, o.TCPAck)
		}
	}
	if st := c.Stats[0]; st.Packets != uint64(len(want)) || st.Drops != 0 || st.Undecodable != 0 {
		t.Errorf("got stats %+v, want %d packets, none dropped or undecodable", st, len(want))
	}
}

// TestPrivilegedRejectQuotesSYN has the kernel answer TCP SYN probes
// itself, as kube-proxy's and a NetworkPolicy's REJECT rules do: SYN
// probes are written into tun0 (a raw-IP link) in a throw-away netns whose
// nftables input chain rejects port 80 (icmpx port-unreachable, nft's
// default, as kube-proxy's nftables mode sends it) and port 81
// (admin-prohibited), and has no listener on port 82 (an RST-ACK). The
// ring on tun0 must see each SYN coming in and its answer going out, over
// IPv4 and IPv6: the kernel's ICMP errors quoting the SYN whole, so with
// the probe's ports, ISN and token, and the RST-ACK acknowledging the ISN.
func TestPrivilegedRejectQuotesSYN(t *testing.T) {
	ns, tun := newTun(t)
	nft(t, ns, `table inet cnitrace_capture_test {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 80 reject
		tcp dport 81 reject with icmpx admin-prohibited
	}
}`)
	s, err := Start(context.Background(), []Target{{NS: ns, Point: topology.Point{ID: "p0", Interface: "tun0", NetNS: ns.ID()}}},
		Config{Magic: probe.Magic})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, fam := range [][2]string{{"10.97.0.2", "10.97.0.1"}, {"fd97::2", "fd97::1"}} {
		peer, self := netip.MustParseAddr(fam[0]), netip.MustParseAddr(fam[1])
		for i, port := range []uint16{80, 81, 82} {
			syn := tcpSYN()
			syn.SrcPort, syn.DstPort = layers.TCPPort(40001+i), layers.TCPPort(port)
			if _, err := tun.Write(onLinkChecksummed(t, LinkRawIP, tcpPacket(peer, self, syn, nil))); err != nil {
				t.Fatalf("write into tun0: %v", err)
			}
			want[fmt.Sprintf("%v syn", netip.AddrPortFrom(self, port))] = 1
		}
		unreach, port, prohibited := "3", "3", "13"
		if peer.Is6() {
			unreach, port, prohibited = "1", "4", "1"
		}
		want[fmt.Sprintf("%v unreachable %s/%s", netip.AddrPortFrom(self, 80), unreach, port)] = 1
		want[fmt.Sprintf("%v unreachable %s/%s", netip.AddrPortFrom(self, 81), unreach, prohibited)] = 1
		want[fmt.Sprintf("%v rst-ack", netip.AddrPortFrom(self, 82))] = 1
	}
	time.Sleep(50 * time.Millisecond)
	c, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, o := range c.Observations {
		got[rejectAnswer(t, o)]++
	}
	if !maps.Equal(got, want) {
		t.Errorf("seen %v, want %v", got, want)
	}
	if st := c.Stats[0]; st.Undecodable != 0 || st.Packets != uint64(len(want)) {
		t.Errorf("got stats %+v, want %d packets, all decodable", st, len(want))
	}
}

// rejectAnswer checks an observation of TestPrivilegedRejectQuotesSYN and
// names it by the probe's target, "10.97.0.1:80 syn", "... rst-ack" or
// "... unreachable 3/3" (ICMP type and code).
func rejectAnswer(t *testing.T, o Observation) string {
	t.Helper()
	switch {
	case o.Proto == ProtoTCP && o.Dir == topology.RX:
		if o.TCPFlags != TCPFlagSYN || o.TCPSeq != tokISN || !bytes.Equal(o.Token, tokenBytes) {
			t.Errorf("%v > %v: flags %#02x seq %#x token % x, want the SYN probe", o.Src, o.Dst, o.TCPFlags, o.TCPSeq, o.Token)
		}
		return fmt.Sprintf("%v syn", netip.AddrPortFrom(o.Dst, o.DstPort))
	case o.Proto == ProtoTCP && o.Dir == topology.TX:
		if o.TCPFlags != TCPFlagRST|TCPFlagACK || o.TCPAck != tokISN+1 {
			t.Errorf("%v > %v: flags %#02x ack %#x, want an RST-ACK of ISN %#x", o.Src, o.Dst, o.TCPFlags, o.TCPAck, tokISN)
		}
		return fmt.Sprintf("%v rst-ack", netip.AddrPortFrom(o.Src, o.SrcPort))
	case o.Proto == ProtoUnreachable && o.Dir == topology.TX:
		// The kernel quotes the SYN whole: the token is there.
		if o.TCPSeq != tokISN || !bytes.Equal(o.Token, tokenBytes) || o.SrcPort != 40001+o.DstPort-80 {
			t.Errorf("%v > %v: quoted ports %d > %d seq %#x token % x, want the SYN's", o.Src, o.Dst, o.SrcPort, o.DstPort, o.TCPSeq, o.Token)
		}
		return fmt.Sprintf("%v unreachable %d/%d", netip.AddrPortFrom(o.Src, o.DstPort), o.ICMPType, o.ICMPCode)
	}
	t.Errorf("unexpected %s %s observation %+v", o.Dir, o.Proto, o)
	return "unexpected"
}

// nft loads ruleset into ns with nft -f, through nsenter; it skips when
// either is missing or the kernel has no nf_tables (or nft_reject), and
// fails instead under CI=true, whose machine has both (make deps).
func nft(t *testing.T, ns *topology.NetNS, ruleset string) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	for _, prog := range []string{"nsenter", "nft"} {
		if _, err := exec.LookPath(prog); err != nil {
			skip("skipping, %s not found: %v", prog, err)
		}
	}
	cmd := exec.CommandContext(t.Context(), "nsenter", "--net="+ns.Path(), "--", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		skip("skipping, nft cannot load a reject rule here: %v: %s", err, out)
	}
}

// newInjectPair creates the veth pair l4a/l4b, both up, in a fresh netns,
// and returns the netns and a function that sends a whole Ethernet frame
// out of l4a, so that l4b receives it.
func newInjectPair(t *testing.T) (*topology.NetNS, func(frame []byte)) {
	t.Helper()
	labtest.Require(t)
	ns := labtest.NetNS(t, "capt-l4")
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: "l4a", HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0x4a, 0x0a}},
		PeerName:         "l4b",
		PeerHardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0x4b, 0x0b}, // not macB: every frame is another host's
	}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("create veth pair: %v", err)
	}
	var a int
	for _, name := range []string{"l4a", "l4b"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		if name == "l4a" {
			a = l.Attrs().Index
		}
	}
	waitUp(t, h, "l4a")
	sock, err := topology.Open(ns, func() (*os.File, error) {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: it never receives
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), "packet"), nil
	})
	if err != nil {
		t.Skipf("skipping, cannot open an AF_PACKET socket: %v", err)
	}
	t.Cleanup(func() { sock.Close() })
	to := &unix.SockaddrLinklayer{Ifindex: a, Halen: 6}
	copy(to.Addr[:], macB[:])
	return ns, func(frame []byte) {
		t.Helper()
		if err := unix.Sendto(int(sock.Fd()), frame, 0, to); err != nil {
			t.Fatalf("send a frame out of l4a: %v", err)
		}
	}
}

// waitUp waits, at most 5 s, until link name is operationally up: until
// then the kernel may drop what is sent through it.
func waitUp(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
	}
	t.Fatalf("%s is not up after 5 s", name)
}
