//go:build linux

package lab_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// backendTimeout bounds one connection or one DNS query of these tests.
const backendTimeout = 2 * time.Second

// whoamiTCP connects from a socket created in ns to addr and returns what
// the backend answered: the address the connection reached, after any
// DNAT.
func whoamiTCP(ns *topology.NetNS, addr netip.AddrPort) (string, error) {
	c, err := topology.Open(ns, func() (net.Conn, error) {
		return net.DialTimeout("tcp", addr.String(), backendTimeout) // a literal address: no resolver in the netns
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(backendTimeout))
	b, err := io.ReadAll(io.LimitReader(c, 128))
	return strings.TrimSpace(string(b)), err
}

// whoamiDNS asks server, from a UDP socket created in ns, for the A (or,
// for an IPv6 server, AAAA) record of lab.WhoamiName, and returns the
// address answered and the reply's header.
func whoamiDNS(ns *topology.NetNS, server netip.AddrPort) (netip.Addr, dnsmessage.Header, error) {
	network, qtype := "udp4", dnsmessage.TypeA
	if server.Addr().Is6() {
		network, qtype = "udp6", dnsmessage.TypeAAAA
	}
	c, err := topology.Open(ns, func() (net.PacketConn, error) { return net.ListenPacket(network, ":0") })
	if err != nil {
		return netip.Addr{}, dnsmessage.Header{}, err
	}
	defer c.Close()
	id := uint16(rand.Uint32())
	q, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(lab.WhoamiName + "."), Type: qtype, Class: dnsmessage.ClassINET}},
	}).Pack()
	if err != nil {
		return netip.Addr{}, dnsmessage.Header{}, err
	}
	c.SetDeadline(time.Now().Add(backendTimeout))
	if _, err := c.WriteTo(q, net.UDPAddrFromAddrPort(server)); err != nil {
		return netip.Addr{}, dnsmessage.Header{}, err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return netip.Addr{}, dnsmessage.Header{}, err
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil || m.ID != id {
			continue // not the answer to this query
		}
		if got := from.(*net.UDPAddr).AddrPort(); got.Addr().Unmap() != server.Addr() {
			return netip.Addr{}, m.Header, fmt.Errorf("answer from %s, want %s", got, server)
		}
		for _, a := range m.Answers {
			switch r := a.Body.(type) {
			case *dnsmessage.AResource:
				return netip.AddrFrom4(r.A), m.Header, nil
			case *dnsmessage.AAAAResource:
				return netip.AddrFrom16(r.AAAA), m.Header, nil
			}
		}
		return netip.Addr{}, m.Header, fmt.Errorf("no address in the answer (%s)", m.RCode)
	}
}

// counts tallies answers by what they said.
type counts map[string]int

func (c counts) String() string {
	var parts []string
	for k, v := range c {
		parts = append(parts, k+": "+strconv.Itoa(v))
	}
	return strings.Join(parts, ", ")
}

// spread connects tries times from ns to addr and counts the answers; a
// failed try counts under "error".
func spread(t *testing.T, ns *topology.NetNS, addr netip.AddrPort, tries int) counts {
	t.Helper()
	got := counts{}
	for range tries {
		who, err := whoamiTCP(ns, addr)
		if err != nil {
			t.Logf("connect to %s: %v", addr, err)
			who = "error"
		}
		got[who]++
	}
	return got
}

// spreadDNS queries addr tries times from ns and counts the addresses
// answered; a failed query counts under "error", an answer that is not
// authoritative under "not authoritative".
func spreadDNS(t *testing.T, ns *topology.NetNS, addr netip.AddrPort, tries int) counts {
	t.Helper()
	got := counts{}
	for range tries {
		who, h, err := whoamiDNS(ns, addr)
		switch {
		case err != nil:
			t.Logf("query %s: %v", addr, err)
			got["error"]++
		case !h.Authoritative:
			got["not authoritative"]++
		default:
			got[who.String()]++
		}
	}
	return got
}

// checkSpread checks that every answer is one of the endpoints and each
// endpoint answered at least once.
func checkSpread(t *testing.T, what string, got counts, eps []netip.Addr) {
	t.Helper()
	t.Logf("%s: %s", what, got)
	total := 0
	for _, ep := range eps {
		if got[ep.String()] == 0 {
			t.Errorf("%s: endpoint %s never answered (%s)", what, ep, got)
		}
		total += got[ep.String()]
	}
	if n := sum(got); total != n {
		t.Errorf("%s: %d of %d answers from no endpoint (%s)", what, n-total, n, got)
	}
}

func sum(c counts) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// netnsInode returns the inode of the network namespace of pid.
func netnsInode(pid int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// checkProcessesInPods checks that l has want processes, that every
// dnsmasq among them runs in one of its pods' namespaces, and that no
// socket of this (the root) namespace is bound to a lab address: the TCP
// servers' process runs here, but its listeners were created in the pods.
func checkProcessesInPods(t *testing.T, l *lab.Lab, want int) {
	t.Helper()
	pids, err := lab.Processes(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != want {
		t.Errorf("lab %s has %d processes %v, want %d", l.Name, len(pids), pids, want)
	}
	pods := map[uint64]string{}
	for _, n := range l.Nodes {
		pods[n.Pod.NS.Inode()], pods[n.Sibling.NS.Inode()] = n.Pod.Name, n.Sibling.Name
	}
	for _, pid := range pids {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if !strings.Contains(string(cmdline), "dnsmasq") {
			continue
		}
		ino, err := netnsInode(pid)
		if errors.Is(err, os.ErrNotExist) {
			continue // exited meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := pods[ino]; !ok {
			t.Errorf("dnsmasq %d of lab %s runs in net:[%d], no pod's namespace", pid, l.Name, ino)
		}
	}
	checkNoLabSockets(t)
}

// checkNoLabSockets fails t if a TCP or UDP socket of the test's own
// network namespace is bound to an address of the pod network.
func checkNoLabSockets(t *testing.T) {
	t.Helper()
	pods := []netip.Prefix{lab.ClusterCIDR, netip.MustParsePrefix("fd00:10:244::/48")}
	for _, f := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile("/proc/self/net/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			a, ok := procNetAddr(fields[1])
			for _, p := range pods {
				if ok && p.Contains(a.Addr()) {
					t.Errorf("a %s socket of the test's own netns is bound to %s", f, a)
				}
			}
		}
	}
}

// procNetAddr parses a local_address of /proc/net/{tcp,udp}[6]: the
// address in hex, 32-bit words in host (little-endian) order, a colon, the
// port in hex.
func procNetAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(h)
	port, perr := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || perr != nil || len(raw)%4 != 0 {
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	a, ok := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), ok
}
