package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// connect connects from ns to addr and returns what the lab's backend
// answered: the address the connection reached.
func connect(t *testing.T, ns *topology.NetNS, addr netip.AddrPort) string {
	t.Helper()
	c, err := topology.Open(ns, func() (net.Conn, error) { return net.DialTimeout("tcp", addr.String(), 2*time.Second) })
	if err != nil {
		t.Errorf("connect to %s: %v", addr, err)
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(io.LimitReader(c, 128))
	return strings.TrimSpace(string(b))
}

// The CLI builds a lab with a Service (--service alone: kube-proxy's
// iptables mode, the default) and --deny icmp that outlives it: the backends serve from their own processes (the TCP
// servers in a session of their own), the Service spreads connections
// over both endpoints, pings are denied and `fault --clear` lifts that,
// and `down` leaves no process, pid file or namespace.
func TestPrivilegedLabUpKubeProxyServiceCLI(t *testing.T) {
	labtest.Require(t)
	bin, _ := buildBinaries(t)
	b := make([]byte, 3)
	rand.Read(b)
	name := "cnitrace-svc-" + hex.EncodeToString(b)
	t.Cleanup(func() { lab.Down(name) }) // only if the test fails before its own Down

	out := runBinary(t, bin, "up", "--name", name, "--service", "--deny", "icmp")
	for _, want := range []string{"service 10.96.0.10 (kube-proxy iptables mode): tcp/80 -> 10.244.2.2:8080 10.244.2.3:8080",
		"ICMP is not translated", "backends: every pod serves TCP 8080", lab.RunDir(name), "faults: --deny icmp"} {
		if !strings.Contains(out, want) {
			t.Errorf("lab up does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "--to 10.96.0.10\n") {
		t.Errorf("lab up offers an ICMP trace through a Service that does not translate ICMP:\n%s", out)
	}
	pids, err := lab.Processes(name)
	if err != nil || len(pids) != 5 {
		t.Fatalf("processes of lab %s after up: %v, %v; want 4 DNS servers and the backends", name, pids, err)
	}
	if pid := pidIn(t, lab.BackendPIDFile(name)); !running(pid) {
		t.Errorf("no background backends after lab up (pid %d)", pid)
	} else if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("backends %d are in session %d (%v), want their own", pid, sid, err)
	}

	l, err := lab.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seen := map[string]int{}
	for range 30 {
		seen[connect(t, l.Nodes[0].Pod.NS, netip.AddrPortFrom(lab.ServiceAddr, 80))]++
	}
	if seen["10.244.2.2"] == 0 || seen["10.244.2.3"] == 0 || seen["10.244.2.2"]+seen["10.244.2.3"] != 30 {
		t.Errorf("30 connections to the Service reached %v, want both endpoints and nothing else", seen)
	}
	if lost := pingLost(t, l, 5); lost != 5 {
		t.Errorf("with --deny icmp %d of 5 pings lost, want all", lost)
	}
	runBinary(t, bin, "fault", name, "--clear")
	if lost := pingLost(t, l, 5); lost != 0 {
		t.Errorf("after fault --clear %d of 5 pings lost, want none", lost)
	}
	if got := connect(t, l.Nodes[0].Pod.NS, netip.AddrPortFrom(l.Nodes[1].Sibling.Addr, lab.BackendPort)); got != "10.244.2.3" {
		t.Errorf("TCP to node 2's sibling after fault --clear: %q, want 10.244.2.3", got)
	}
	runBinary(t, bin, "down", name)
	labtest.CheckGone(t, name)
}

// pidIn returns the pid recorded in file, failing t when there is none.
func pidIn(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return pid
}
