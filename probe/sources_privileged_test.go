//go:build linux

package probe

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedRunSourcesKeepsSocketsApart runs two sources on two sockets
// in one netns, probing its loopback. Every raw ICMP socket there reads
// every echo reply, so each run also sees the other's; each must keep only
// its own replies, and the stamps of its own socket's error queue.
func TestPrivilegedRunSourcesKeepsSocketsApart(t *testing.T) {
	ns := labtest.NetNS(t, "probe-src")
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
	cfg := Config{Target: netip.MustParseAddr("127.0.0.1"), Count: 10, Interval: 10 * time.Millisecond, Timeout: 500 * time.Millisecond, Size: 56}
	sources := make([]Source, 2)
	for i := range sources {
		conn, err := Listen(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		sources[i] = Source{Name: "socket " + string(rune('A'+i)), Conn: conn, Config: cfg}
		sources[i].Config.RunID = NewRunID()
	}
	results, err := RunSources(context.Background(), sources)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range results {
		if res.RunID != sources[i].Config.RunID || len(res.Probes) != cfg.Count {
			t.Fatalf("source %d: run id %#x, %d probes; want %#x, %d", i, res.RunID, len(res.Probes), sources[i].Config.RunID, cfg.Count)
		}
		sched := checkStamps(t, res) // answered, and stamped in order
		t.Logf("source %d: p50 SCHED-SentAt %.1f us", i, p50us(sched))
	}
}
