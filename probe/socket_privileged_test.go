//go:build linux

package probe

import (
	"context"
	"net/netip"
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
