//go:build linux

package topology_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// ctBackground is how many unrelated entries the conntrack tests insert.
const ctBackground = 20000

var (
	ctPod   = netip.MustParseAddr("10.244.1.5")
	ctSvc   = netip.MustParseAddr("10.96.0.10")
	ctPod6  = netip.MustParseAddr("fd00:244:1::5")
	ctSvc6  = netip.MustParseAddr("fd00:96::10")
	ctDecoy = 10 // IPv6 entries to the Service's port from other sources
)

// ctFlow is a conntrack entry from src:sport to dst:dport, answered by
// replySrc:rport (a DNAT when replySrc is not dst).
func ctFlow(proto uint8, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, replySrc netip.Addr, rport uint16) *netlink.ConntrackFlow {
	fam := uint8(unix.AF_INET)
	if src.Is6() {
		fam = unix.AF_INET6
	}
	fl := &netlink.ConntrackFlow{FamilyType: fam, TimeOut: 600}
	fl.Forward = netlink.IPTuple{SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Protocol: proto, SrcPort: sport, DstPort: dport}
	fl.Reverse = netlink.IPTuple{SrcIP: replySrc.AsSlice(), DstIP: src.AsSlice(), Protocol: proto, SrcPort: rport, DstPort: sport}
	if proto == unix.IPPROTO_TCP {
		fl.ProtoInfo = &netlink.ProtoInfoTCP{State: 3} // ESTABLISHED
	}
	return fl
}

// background returns entry i of the unrelated entries: to the Service's
// other port, to its port from other sources or over UDP, and IPv6.
func background(i int) *netlink.ConntrackFlow {
	other := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
	other6 := netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x00, 2: 0x00, 3: 0x01, 14: byte(i >> 8), 15: byte(i)})
	backend := netip.MustParseAddr("10.244.9.9")
	sport := uint16(1024 + i%60000)
	switch {
	case i < ctDecoy:
		return ctFlow(unix.IPPROTO_TCP, other6, sport, ctSvc6, 80, netip.MustParseAddr("fd00:244:9::9"), 8080)
	case i%4 == 0:
		return ctFlow(unix.IPPROTO_TCP, ctPod, sport, ctSvc, 443, backend, 8443)
	case i%4 == 1:
		return ctFlow(unix.IPPROTO_TCP, other, sport, ctSvc, 80, backend, 8080)
	case i%4 == 2:
		return ctFlow(unix.IPPROTO_UDP, other, sport, ctSvc, 80, backend, 8080)
	}
	return ctFlow(unix.IPPROTO_TCP, other6, sport, ctSvc6, 443, netip.MustParseAddr("fd00:244:9::9"), 8443)
}

// ctSocket adapts *nl.NetlinkSocket to io.Closer for topology.Open.
type ctSocket struct{ *nl.NetlinkSocket }

func (s ctSocket) Close() error { s.NetlinkSocket.Close(); return nil }

// createICMP inserts an ICMP echo entry from src to dst with id, answered
// by replySrc: netlink.ConntrackCreate sends ports, which ICMP has not.
func createICMP(t *testing.T, ns *topology.NetNS, src, dst, replySrc netip.Addr, id uint16) {
	t.Helper()
	s, err := topology.Open(ns, func() (ctSocket, error) {
		s, err := nl.Subscribe(unix.NETLINK_NETFILTER)
		return ctSocket{s}, err
	})
	if err != nil {
		t.Fatalf("open netfilter socket: %v", err)
	}
	defer s.Close()
	tuple := func(typ int, src, dst netip.Addr, icmpType byte) *nl.RtAttr {
		a := nl.NewRtAttr(unix.NLA_F_NESTED|typ, nil)
		ip := a.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_IP, nil)
		ip.AddRtAttr(nl.CTA_IP_V4_SRC, src.AsSlice())
		ip.AddRtAttr(nl.CTA_IP_V4_DST, dst.AsSlice())
		p := a.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, nil)
		p.AddRtAttr(nl.CTA_PROTO_NUM, []byte{unix.IPPROTO_ICMP})
		p.AddRtAttr(4, binary.BigEndian.AppendUint16(nil, id)) // CTA_PROTO_ICMP_ID
		p.AddRtAttr(5, []byte{icmpType})                       // CTA_PROTO_ICMP_TYPE
		p.AddRtAttr(6, []byte{0})                              // CTA_PROTO_ICMP_CODE
		return a
	}
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_CTNETLINK<<8|nl.IPCTNL_MSG_CT_NEW, unix.NLM_F_CREATE|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_NETFILTER: {Socket: s.NetlinkSocket}}
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_INET, Version: nl.NFNETLINK_V0})
	req.AddData(tuple(nl.CTA_TUPLE_ORIG, src, dst, 8))
	req.AddData(tuple(nl.CTA_TUPLE_REPLY, replySrc, src, 0))
	req.AddData(nl.NewRtAttr(nl.CTA_TIMEOUT, binary.BigEndian.AppendUint32(nil, 600)))
	if _, err := req.Execute(unix.NETLINK_NETFILTER, 0); err != nil {
		t.Fatalf("create ICMP entry %s -> %s: %v", src, dst, err)
	}
}

// kernelFilters says whether the running kernel filters conntrack dumps
// (Linux 5.8 and later).
func kernelFilters(t *testing.T) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	v := strings.SplitN(unix.ByteSliceToString(u.Release[:]), ".", 3)
	major, _ := strconv.Atoi(v[0])
	minor := 0
	if len(v) > 1 {
		minor, _ = strconv.Atoi(v[1])
	}
	return major > 5 || major == 5 && minor >= 8
}

// cost is what one read of conntrack took.
type cost struct {
	wall, cpu time.Duration
	alloc     uint64 // bytes allocated
}

// measure runs fn n times and returns its cost per run: wall time, the
// process's CPU (user and system: the kernel fills dumps in recvmsg) and
// the Go heap allocated.
func measure(t *testing.T, n int, fn func()) cost {
	t.Helper()
	var ru0, ru1 unix.Rusage
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru0); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	start := time.Now()
	for range n {
		fn()
	}
	wall := time.Since(start)
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru1); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	runtime.ReadMemStats(&m1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	return cost{wall / time.Duration(n), cpu / time.Duration(n), (m1.TotalAlloc - m0.TotalAlloc) / uint64(n)}
}

// checkWholeTable reads fam's whole table with List (a filter of the
// family only, which is what a kernel before 5.8 sends for any filter) and
// with netlink.ConntrackTableList: the entries must parse alike, and
// discovery's filter must pick the probes' flow alone out of them.
func checkWholeTable(t *testing.T, h *netlink.Handle, ct *topology.Conntrack, fam netlink.InetFamily) {
	t.Helper()
	got, err := ct.List(topology.ConntrackFilter{Family: uint8(fam)})
	if err != nil {
		t.Fatalf("list the whole table: %v", err)
	}
	want, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		t.Fatalf("ConntrackTableList: %v", err)
	}
	key := func(fl *netlink.ConntrackFlow) string {
		return fmt.Sprintf("%d %d %s %s %d %d %s %s %d %d %d/%d %d/%d %d %d %d", fl.FamilyType, fl.Forward.Protocol,
			fl.Forward.SrcIP, fl.Forward.DstIP, fl.Forward.SrcPort, fl.Forward.DstPort,
			fl.Reverse.SrcIP, fl.Reverse.DstIP, fl.Reverse.SrcPort, fl.Reverse.DstPort,
			fl.Forward.Packets, fl.Forward.Bytes, fl.Reverse.Packets, fl.Reverse.Bytes, fl.Mark, fl.Zone, fl.TimeOut/60)
	}
	seen := map[string]int{}
	for _, fl := range want {
		if fl.Forward.Protocol != unix.IPPROTO_ICMP { // netlink parses no ICMP ids: only TCP and UDP compare
			seen[key(fl)]++
		}
	}
	matched := 0
	tcp := topology.FlowFilter(topology.Flow{Proto: topology.ProtoTCP, Port: 80}, ctSvc, ctPod)
	for _, fl := range got {
		if tcp.Match(fl) {
			matched++
		}
		if fl.Forward.Protocol == unix.IPPROTO_ICMP {
			continue
		}
		if seen[key(fl)] == 0 {
			t.Errorf("entry %s parsed here, not by netlink", key(fl))
		}
		seen[key(fl)]--
	}
	if len(got) != len(want) {
		t.Errorf("List of the whole table: %d entries, ConntrackTableList %d", len(got), len(want))
	}
	if matched != 1 {
		t.Errorf("discovery's filter matches %d entries of the whole table, want 1", matched)
	}
}

// TestPrivilegedConntrackFiltered fills a throw-away netns's conntrack
// with ctBackground unrelated entries and the probes' flows (TCP, UDP and
// ICMP echo over IPv4, TCP over IPv6, each DNATed to a backend), then checks
// that discovery's lookup finds each flow's backend, that the kernel sent
// only the matching entries, and that the filtered read costs a fraction
// of a full netlink.ConntrackTableList.
func TestPrivilegedConntrackFiltered(t *testing.T) {
	ns := labtest.NetNS(t, "conntrack")
	h, err := topology.NetlinkHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i := range ctBackground {
		fl := background(i)
		if err := h.ConntrackCreate(netlink.ConntrackTable, netlink.InetFamily(fl.FamilyType), fl); err != nil {
			t.Fatalf("create entry %d: %v", i, err)
		}
	}
	backend, backendICMP, backend6 := netip.MustParseAddr("10.244.2.7"), netip.MustParseAddr("10.244.2.8"), netip.MustParseAddr("fd00:244:2::7")
	backendUDP := netip.MustParseAddr("10.244.2.9")
	for _, fl := range []*netlink.ConntrackFlow{
		ctFlow(unix.IPPROTO_TCP, ctPod, 40000, ctSvc, 80, backend, 8080),
		ctFlow(unix.IPPROTO_TCP, ctPod6, 40000, ctSvc6, 80, backend6, 8080),
		ctFlow(unix.IPPROTO_UDP, ctPod, 40002, ctSvc, 53, backendUDP, 5353),
	} {
		if err := h.ConntrackCreate(netlink.ConntrackTable, netlink.InetFamily(fl.FamilyType), fl); err != nil {
			t.Fatalf("create the probes' entry: %v", err)
		}
	}
	createICMP(t, ns, ctPod, ctSvc, backendICMP, 7)

	ct, err := topology.OpenConntrack(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	if n, ok := ct.Entries(); !ok || n != ctBackground+4 {
		t.Errorf("Entries: got %d, %v, want %d, true", n, ok, ctBackground+4)
	}
	filters := kernelFilters(t)
	for _, tc := range []struct {
		name         string
		flow         topology.Flow
		src, target  netip.Addr
		want         netip.Addr
		wantReceived int // entries the kernel sends: IPv6 addresses are checked here only
	}{
		{"tcp", topology.Flow{Proto: topology.ProtoTCP, Port: 80}, ctPod, ctSvc, backend, 1},
		{"tcp by its source port", topology.Flow{Proto: topology.ProtoTCP, Port: 80, SrcPort: 40000}, ctPod, ctSvc, backend, 1},
		{"tcp by a source port without entry", topology.Flow{Proto: topology.ProtoTCP, Port: 80, SrcPort: 40001}, ctPod, ctSvc, backend, 1},
		{"udp by its source port", topology.Flow{Proto: topology.ProtoUDP, Port: 53, SrcPort: 40002}, ctPod, ctSvc, backendUDP, 1},
		{"icmp", topology.Flow{}, ctPod, ctSvc, backendICMP, 1},
		{"icmp by its id", topology.Flow{EchoID: 7}, ctPod, ctSvc, backendICMP, 1},
		{"icmp by an id without entry", topology.Flow{EchoID: 9}, ctPod, ctSvc, backendICMP, 1},
		{"tcp6", topology.Flow{Proto: topology.ProtoTCP, Port: 80}, ctPod6, ctSvc6, backend6, 1 + ctDecoy},
		{"tcp6 by its source port", topology.Flow{Proto: topology.ProtoTCP, Port: 80, SrcPort: 40000}, ctPod6, ctSvc6, backend6, 1 + ctDecoy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := topology.DNAT(ns, tc.target, tc.flow, tc.src)
			if err != nil || !ok || got != tc.want {
				t.Errorf("DNAT of %s from %s: got %s, %v, %v, want %s", tc.target, tc.src, got, ok, err, tc.want)
			}
			f := topology.FlowFilter(tc.flow, tc.target, tc.src)
			flows, received, err := ct.ListCounted(f)
			if err != nil {
				t.Fatalf("list %+v: %v", f, err)
			}
			if len(flows) != 1 {
				t.Errorf("list %+v: got %d entries, want 1", f, len(flows))
			}
			if filters && received != tc.wantReceived {
				t.Errorf("list %+v: the kernel sent %d entries, want %d", f, received, tc.wantReceived)
			}
			t.Logf("%s: the kernel sent %d of %d entries", tc.name, received, ctBackground+4)
		})
	}

	t.Run("echo", func(t *testing.T) {
		fl, ok, err := ct.Echo(ctPod, ctSvc, 7)
		if got, _ := netip.AddrFromSlice(fl.Reverse.SrcIP); err != nil || !ok || got != backendICMP {
			t.Errorf("Echo id 7: got %s, %v, %v, want %s", got, ok, err, backendICMP)
		}
		if _, ok, err := ct.Echo(ctPod, ctSvc, 9); err != nil || ok {
			t.Errorf("Echo id 9: got %v, %v, want no entry and no error", ok, err)
		}
	})
	t.Run("port flow", func(t *testing.T) {
		for _, tc := range []struct {
			proto uint8
			src   netip.Addr
			sport uint16
			dst   netip.Addr
			dport uint16
			want  netip.Addr // invalid: no entry
		}{
			{unix.IPPROTO_TCP, ctPod, 40000, ctSvc, 80, backend},
			{unix.IPPROTO_UDP, ctPod, 40002, ctSvc, 53, backendUDP},
			{unix.IPPROTO_TCP, ctPod6, 40000, ctSvc6, 80, backend6},
			{unix.IPPROTO_UDP, ctPod, 40000, ctSvc, 80, netip.Addr{}}, // TCP's ports, UDP
			{unix.IPPROTO_TCP, ctPod, 40000, ctSvc, 443, netip.Addr{}},
		} {
			fl, ok, err := ct.PortFlow(tc.proto, tc.src, tc.sport, tc.dst, tc.dport)
			var got netip.Addr
			if ok {
				got, _ = netip.AddrFromSlice(fl.Reverse.SrcIP)
			}
			if err != nil || ok != tc.want.IsValid() || got.Unmap() != tc.want {
				t.Errorf("PortFlow(%d, %s:%d -> %s:%d): got %s, %v, %v, want %v", tc.proto, tc.src, tc.sport, tc.dst, tc.dport, got, ok, err, tc.want)
			}
		}
	})

	for _, flow := range []topology.Flow{{}, {EchoID: 7}} {
		t.Run(fmt.Sprintf("without CAP_NET_ADMIN, echo id %d", flow.EchoID), func(t *testing.T) {
			err := withoutCaps(t, func() error {
				_, _, err := topology.DNAT(ns, ctSvc, flow, ctPod)
				return err
			}, unix.CAP_NET_ADMIN)
			var capErr *topology.CapabilityError
			if !errors.As(err, &capErr) || capErr.Capability != "CAP_NET_ADMIN" || !strings.HasPrefix(err.Error(), "read conntrack in "+ns.String()) {
				t.Errorf("DNAT without CAP_NET_ADMIN: got %v, want read conntrack in %s: ... (needs CAP_NET_ADMIN)", err, ns)
			}
		})
	}

	fam := netlink.InetFamily(unix.AF_INET)
	checkWholeTable(t, h, ct, fam)
	full := measure(t, 1, func() {
		if _, err := h.ConntrackTableList(netlink.ConntrackTable, fam); err != nil {
			t.Errorf("full dump: %v", err)
		}
	})
	tcp := topology.FlowFilter(topology.Flow{Proto: topology.ProtoTCP, Port: 80}, ctSvc, ctPod)
	filtered := measure(t, 5, func() {
		if _, err := ct.List(tcp); err != nil {
			t.Errorf("filtered dump: %v", err)
		}
	})
	echo := measure(t, 5, func() {
		if _, _, err := ct.Echo(ctPod, ctSvc, 7); err != nil {
			t.Errorf("echo lookup: %v", err)
		}
	})
	t.Logf("full ConntrackTableList: wall %v, cpu %v, %d KiB allocated", full.wall, full.cpu, full.alloc>>10)
	t.Logf("filtered List:           wall %v, cpu %v, %d KiB allocated", filtered.wall, filtered.cpu, filtered.alloc>>10)
	port := measure(t, 5, func() {
		if _, _, err := ct.PortFlow(unix.IPPROTO_TCP, ctPod, 40000, ctSvc, 80); err != nil {
			t.Errorf("port lookup: %v", err)
		}
	})
	t.Logf("Echo lookup:             wall %v, cpu %v, %d KiB allocated", echo.wall, echo.cpu, echo.alloc>>10)
	t.Logf("PortFlow lookup:         wall %v, cpu %v, %d KiB allocated", port.wall, port.cpu, port.alloc>>10)
	if filters && filtered.cpu*5 >= full.cpu {
		t.Errorf("filtered read took %v CPU, full dump %v: want less than a fifth", filtered.cpu, full.cpu)
	}
	if echo.cpu*5 >= filtered.cpu {
		t.Errorf("echo lookup took %v CPU, filtered dump %v: want less than a fifth", echo.cpu, filtered.cpu)
	}
	if port.cpu*5 >= filtered.cpu {
		t.Errorf("port lookup took %v CPU, filtered dump %v: want less than a fifth", port.cpu, filtered.cpu)
	}
	// Discovery's own read takes the lookup when it knows the port.
	dnat := func(flow topology.Flow) cost {
		return measure(t, 5, func() {
			if _, _, err := topology.DNAT(ns, ctSvc, flow, ctPod); err != nil {
				t.Errorf("DNAT %+v: %v", flow, err)
			}
		})
	}
	byPort, byDump := dnat(topology.Flow{Proto: topology.ProtoUDP, Port: 53, SrcPort: 40002}), dnat(topology.Flow{Proto: topology.ProtoUDP, Port: 53})
	t.Logf("DNAT by port: cpu %v, by dump: cpu %v", byPort.cpu, byDump.cpu)
	if filters && byPort.cpu*5 >= byDump.cpu {
		t.Errorf("DNAT of a flow with its source port took %v CPU, without it %v: want less than a fifth (no dump)", byPort.cpu, byDump.cpu)
	}
}

// TestPrivilegedConntrackEmpty checks that a netns whose conntrack holds
// nothing is read without a dump and gives what a dump of it gives: no
// entry, no DNAT; and that a missing CAP_NET_ADMIN is still named.
func TestPrivilegedConntrackEmpty(t *testing.T) {
	ns := labtest.NetNS(t, "ctempty")
	ct, err := topology.OpenConntrack(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	if n, ok := ct.Entries(); !ok || n != 0 {
		t.Errorf("Entries of a fresh netns: got %d, %v, want 0, true", n, ok)
	}
	f := topology.FlowFilter(topology.Flow{}, ctSvc, ctPod)
	if flows, err := ct.List(f); err != nil || len(flows) != 0 {
		t.Errorf("List of a fresh netns: got %d entries, %v, want none", len(flows), err)
	}
	if got, ok, err := topology.DNAT(ns, ctSvc, topology.Flow{}, ctPod); err != nil || ok {
		t.Errorf("DNAT in a fresh netns: got %s, %v, %v, want no translation", got, ok, err)
	}
	err = withoutCaps(t, func() error {
		_, _, err := topology.DNAT(ns, ctSvc, topology.Flow{}, ctPod)
		return err
	}, unix.CAP_NET_ADMIN)
	var capErr *topology.CapabilityError
	if !errors.As(err, &capErr) || capErr.Capability != "CAP_NET_ADMIN" {
		t.Errorf("DNAT in a fresh netns without CAP_NET_ADMIN: got %v, want a CapabilityError naming CAP_NET_ADMIN", err)
	}
}
