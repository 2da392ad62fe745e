//go:build linux

package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedListenStaysInNetNS proves the socket lives in the namespace
// it was created in: in a fresh netns, loopback is down, so 127.0.0.1 is
// unreachable there (it is reachable in the caller's). Once lo is up the
// probes are answered by that namespace's own kernel.
func TestPrivilegedListenStaysInNetNS(t *testing.T) {
	ns := labtest.NetNS(t, "probe")

	conn, err := Listen(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := Config{Target: netip.MustParseAddr("127.0.0.1"), Count: 3, Interval: 10 * time.Millisecond, Timeout: 500 * time.Millisecond, Size: 56}

	runRefused(t, conn, cfg, syscall.ENETUNREACH) // with lo down in the netns; in the caller's it would work

	nl, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Probes {
		if !p.Answered() {
			t.Errorf("probe %d unanswered on the netns's loopback", p.Seq)
		}
	}
	if stray, err := labtest.ThreadsOutsideNetNS(labtest.Self(t)); err != nil || len(stray) > 0 {
		t.Errorf("threads left in a foreign netns: %v (%v)", stray, err)
	}
}

// TestPrivilegedSocketTakesOnlyProbeReplies runs iputils ping in a netns
// beside an open probe socket, IPv4 and IPv6: a raw ICMP socket gets a copy
// of every echo reply of its netns, and the socket filter must drop ping's
// (no cnitrace magic) before the receive queue, so nothing is there to read
// and nothing counts as a socket drop; a cnitrace echo request sent after
// them is answered on the same socket.
func TestPrivilegedSocketTakesOnlyProbeReplies(t *testing.T) {
	ns := loopbackNS(t, "probe-foreign")
	for _, c := range []struct {
		listen func(*topology.NetNS) (Conn, error)
		proto  icmpProto
		target net.IP
	}{
		{Listen, protoICMP, net.IPv4(127, 0, 0, 1)},
		{ListenIPv6, protoICMPv6, net.IPv6loopback},
	} {
		t.Run(c.proto.String(), func(t *testing.T) {
			conn, err := c.listen(ns)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			in(t, ns, "ping", "-n", "-q", "-c", "20", "-i", "0.01", "-W", "1", c.target.String())
			buf := make([]byte, 1500)
			if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if n, _, err := conn.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after ping's 20 replies the socket read %d bytes (%v), want nothing", n, err)
			}
			if drops, ok := conn.rxDrops(); !ok || drops != 0 {
				t.Errorf("socket drops after ping's replies: %d (readable %v), want 0", drops, ok)
			}
			req, err := c.proto.echoRequest(7, 1, Payload{RunID: 1, Seq: 1}.Marshal(56))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.WriteTo(req, &net.IPAddr{IP: c.target}); err != nil {
				t.Fatal(err)
			}
			if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				t.Fatalf("read the reply to cnitrace's request: %v", err)
			}
			reply := buf[:n]
			if c.proto == protoICMP {
				reply = reply[4*int(reply[0]&0xf):] // a raw IPv4 socket reads the IP header
			}
			if seq, ok := c.proto.matchReply(reply, 1); !ok || seq != 1 {
				t.Errorf("read %x, want the echo reply to seq 1 of run 1", buf[:n])
			}
		})
	}
}
