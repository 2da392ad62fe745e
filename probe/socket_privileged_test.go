package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("privileged test cannot run: CI must run as root")
	}
	t.Skip("skipping: needs root (CAP_SYS_ADMIN, CAP_NET_RAW) to create a netns and a raw socket")
}

// TestPrivilegedListenStaysInNetNS proves the socket lives in the namespace
// it was created in: in a fresh netns, loopback is down, so 127.0.0.1 is
// unreachable there (it is reachable in the caller's). Once lo is up the
// probes are answered by that namespace's own kernel.
func TestPrivilegedListenStaysInNetNS(t *testing.T) {
	needRoot(t)
	var b [4]byte
	rand.Read(b[:])
	name := "cnitrace-probe-" + hex.EncodeToString(b[:])
	ns, err := topology.NewNamedNetNS(topology.NamedNetNSDir, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := topology.RemoveNamedNetNS(topology.NamedNetNSDir, name); err != nil {
			t.Error(err)
		}
	})

	conn, err := Listen(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := Config{Target: netip.MustParseAddr("127.0.0.1"), Count: 3, Interval: 10 * time.Millisecond, Timeout: 500 * time.Millisecond, Size: 56}

	if _, err := Run(context.Background(), conn, cfg); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("with lo down in the netns: got %v, want ENETUNREACH (is the socket in the caller's netns?)", err)
	}

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
	if stray, err := topology.ThreadsOutsideNetNS(mustCurrent(t)); err != nil || len(stray) > 0 {
		t.Errorf("threads left in a foreign netns: %v (%v)", stray, err)
	}
}

func mustCurrent(t *testing.T) *topology.NetNS {
	t.Helper()
	ns, err := topology.CurrentNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}
