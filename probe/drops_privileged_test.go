//go:build linux

package probe

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// loopbackNS returns a fresh netns with lo up.
func loopbackNS(t *testing.T, name string) *topology.NetNS {
	t.Helper()
	ns := labtest.NetNS(t, name)
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
	return ns
}

// sockopt reads an int socket option of conn.
func sockopt(t *testing.T, conn Conn, opt int) int {
	t.Helper()
	var v int
	var gerr error
	if err := conn.(*socket).raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) }); err != nil || gerr != nil {
		t.Fatalf("getsockopt %d: %v %v", opt, err, gerr)
	}
	return v
}

// TestPrivilegedReceiveBuffer: as root Listen forces the receive buffer to
// receiveBuffer whatever net.core.rmem_max says (the kernel reports it
// doubled).
func TestPrivilegedReceiveBuffer(t *testing.T) {
	ns := labtest.NetNS(t, "probe-rcvbuf")
	for _, listen := range []func(*topology.NetNS) (Conn, error){Listen, ListenIPv6} {
		conn, err := listen(ns)
		if err != nil {
			t.Fatal(err)
		}
		if got := sockopt(t, conn, unix.SO_RCVBUF); got < 2*receiveBuffer {
			t.Errorf("SO_RCVBUF is %d, want %d (2 x %d)", got, 2*receiveBuffer, receiveBuffer)
		}
		conn.Close()
	}
}

// TestPrivilegedSocketCountsDrops overflows a socket that nobody reads:
// every raw ICMP socket of a netns gets every echo reply, so the replies
// of a run on a second socket fill the first one's receive queue (made
// small here), and its drop counter says how many it lost.
func TestPrivilegedSocketCountsDrops(t *testing.T) {
	ns := loopbackNS(t, "probe-drops")
	idle, err := Listen(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.(*socket).raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) }); err != nil {
		t.Fatal(err)
	}
	before, ok := idle.rxDrops()
	if !ok || before != 0 {
		t.Fatalf("a fresh socket: %d drops (readable %v), want 0", before, ok)
	}
	conn, err := Listen(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := Config{Target: netip.MustParseAddr("127.0.0.1"), Count: 200, Interval: MinInterval, Timeout: 500 * time.Millisecond, Size: 56, RunID: NewRunID()}
	res, err := Run(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := idle.rxDrops()
	if res.Answered != 200 || res.SocketDrops != 0 {
		t.Errorf("the socket that read: %d of 200 answered, %d drops; want all, none", res.Answered, res.SocketDrops)
	}
	if after < 150 {
		t.Errorf("the socket nobody read dropped %d of the 200 replies, want most (its buffer holds a few)", after)
	}
}
