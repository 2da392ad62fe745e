package main

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Issue 4's point 6, IPv6: ICMPv6 echo probes from a pod's IPv6 address to
// another pod's, across the VXLAN overlay (which carries IPv6 inside IPv4)
// and on the same node, on both dual-stack topologies (flannel's bridge,
// and the routed one with Calico's link-local gateway). Each is checked as
// the IPv4 layouts are: kinds and netns of the points, every probe at every
// point, a delay in the right segment, losses in the right segment and
// direction.

// trace6 traces from the lab namespace at src to the IPv6 target, with
// node 1 as the node, and checks that the report names target and the
// source's IPv6 address want as such; the exit code must be wantCode.
func trace6(t *testing.T, l *lab.Lab, src string, target, source netip.Addr, wantCode int, extra ...string) jsonReport {
	t.Helper()
	if !target.Is6() || !source.Is6() {
		t.Fatalf("target %s, source %s: want IPv6 addresses (is the lab dual-stack?)", target, source)
	}
	args := []string{"trace", "--format", "json", "--netns", src, "--node-netns", l.Nodes[0].NSPath, "--to", target.String()}
	code, stdout, stderr := runCLI(t, append(args, extra...)...)
	if code != wantCode {
		t.Fatalf("trace from %s to %s: exit code %d, want %d; stderr:\n%s", src, target, code, wantCode, stderr)
	}
	var addrs struct {
		Target string
		Source struct{ Addr string }
	}
	if err := json.Unmarshal([]byte(stdout), &addrs); err != nil {
		t.Fatalf("trace output is not the JSON report: %v\n%s", err, stdout)
	}
	if addrs.Target != target.String() || addrs.Source.Addr != source.String() {
		t.Errorf("report says target %s from %s, want %s from %s", addrs.Target, addrs.Source.Addr, target, source)
	}
	return decodeReport(t, stdout)
}

// checkPathNS checks that the first point is the pod's, in a netns of its
// own, and every other one is in the node's.
func checkPathNS(t *testing.T, r jsonReport) {
	t.Helper()
	pod, node := r.Points[0].NetNS, r.Points[1].NetNS
	for _, p := range r.Points[1:] {
		if p.NetNS != node || p.NetNS == pod {
			t.Errorf("point %s (%s) is in %s, want the node netns %s", p.ID, p.Kind, p.NetNS, node)
		}
	}
}

func TestPrivilegedIPv6TraceAcrossVXLAN(t *testing.T) {
	tests := []struct {
		topo  lab.Layout
		kinds []string
	}{
		{lab.LayoutFlannel, []string{"pod", "veth", "bridge", "vxlan", "uplink"}},
		{lab.LayoutRouted, []string{"pod", "veth", "vxlan", "uplink"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.topo), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: tt.topo})
			n1, n2 := l.Nodes[0], l.Nodes[1]
			flags := []string{"--count", "50", "--interval", "10ms"}
			r := trace6(t, l, n1.Pod.NSPath, n2.Pod.Addr6, n1.Pod.Addr6, cli.ExitOK, flags...)

			if got := pointKinds(r); !slices.Equal(got, tt.kinds) {
				t.Fatalf("point kinds %v, want %v", got, tt.kinds)
			}
			checkPathNS(t, r)
			checkAllSeen(t, r, 50)

			// The same path over IPv4, for the record: both families
			// cross the same devices, IPv6 inside the same VXLAN.
			r4 := traceFrom(t, l, n1.Pod.NSPath, n2.Pod.Addr, cli.ExitOK, flags...)
			if !slices.Equal(pointKinds(r4), pointKinds(r)) {
				t.Errorf("IPv4 point kinds %v, IPv6 %v: want the same path", pointKinds(r4), pointKinds(r))
			}
			logFamilies(t, r4, r)
		})
	}
}

func TestPrivilegedIPv6TraceSameNode(t *testing.T) {
	for _, topo := range lab.Layouts {
		t.Run(string(topo), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: topo})
			n1 := l.Nodes[0]
			r := trace6(t, l, n1.Pod.NSPath, n1.Sibling.Addr6, n1.Pod.Addr6, cli.ExitOK, "--count", "30", "--interval", "10ms")

			// pod, its veth, the sibling's veth: on flannel the bridge
			// port found through the pod's IPv6 neighbour table and the
			// bridge's FDB; routed, the node's /128 route out of the
			// sibling's veth, unnumbered but for its link-local gateway.
			if got, want := pointKinds(r), []string{"pod", "veth", "veth"}; !slices.Equal(got, want) {
				t.Fatalf("point kinds %v, want %v", got, want)
			}
			checkPathNS(t, r)
			if p := r.Points; p[1].Interface == p[2].Interface {
				t.Errorf("points %+v: want two different veths in the node", p)
			}
			checkAllSeen(t, r, 30)
		})
	}
}

// TestPrivilegedRoutedIPv6WireDelay delays the requests 2 ms on the wire
// between the routed lab's nodes and checks that an IPv6 trace puts it in
// the network segment. The wire goes in clean first and a short trace
// resolves the uplinks' neighbours through it, so the traces before and
// after the delay cross the same wire (as TestPrivilegedTraceRoutedVeth).
func TestPrivilegedRoutedIPv6WireDelay(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Layout: lab.LayoutRouted})
	if err := l.SetFaults(t.Context(), lab.Faults{Wire: true}); err != nil {
		t.Fatal(err)
	}
	n1, n2 := l.Nodes[0], l.Nodes[1]
	src, dst, from := n1.Pod.NSPath, n2.Pod.Addr6, n1.Pod.Addr6
	flags := []string{"--count", "30", "--interval", "20ms"}
	trace6(t, l, src, dst, from, cli.ExitOK, "--count", "3", "--interval", "10ms")
	before := trace6(t, l, src, dst, from, cli.ExitOK, flags...)
	checkAllSeen(t, before, 30)

	delay := lab.Faults{Network: lab.Network{Request: lab.Impairment{Delay: 2 * time.Millisecond}}}
	if err := l.SetFaults(t.Context(), delay); err != nil {
		t.Fatal(err)
	}
	after := trace6(t, l, src, dst, from, cli.ExitOK, flags...)
	checkAllSeen(t, after, 30)
	b, a := separableInBoth(before, after)
	checkMoved(t, b, a, "network", 2*time.Millisecond)
}

// TestPrivilegedIPv6NetworkFaults delays and then drops the requests on
// the wire between the nodes: IPv4 frames carrying IPv6 in VXLAN, so the
// delay line needs nothing of IPv6.
func TestPrivilegedIPv6NetworkFaults(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Faults: lab.Faults{Wire: true}})
	n1, n2 := l.Nodes[0], l.Nodes[1]
	src, dst, from := n1.Pod.NSPath, n2.Pod.Addr6, n1.Pod.Addr6
	flags := []string{"--count", "30", "--interval", "20ms"}
	before := trace6(t, l, src, dst, from, cli.ExitOK, flags...)
	checkAllSeen(t, before, 30)

	delay := lab.Faults{Network: lab.Network{Request: lab.Impairment{Delay: 2 * time.Millisecond}}}
	if err := l.SetFaults(t.Context(), delay); err != nil {
		t.Fatal(err)
	}
	b, a := separableInBoth(before, trace6(t, l, src, dst, from, cli.ExitOK, flags...))
	checkMoved(t, b, a, "network", 2*time.Millisecond)

	loss := lab.Faults{Network: lab.Network{Request: lab.Impairment{Loss: 0.3}}}
	if err := l.SetFaults(t.Context(), loss); err != nil {
		t.Fatal(err)
	}
	r := trace6(t, l, src, dst, from, cli.ExitFinding, "--count", "60", "--interval", "5ms", "--timeout", "300ms")
	checkLossIn(t, r, 60, "network", "request")
}

// separableInBoth returns before and after with only the segments that
// have times in both. Whether the RX-to-RX segments (veth to bridge, uplink
// to VXLAN device) do depends on the host-wide RX timestamping key, which
// any other process on the host can turn on between two runs (design.md,
// kernel fact 1); the network segment starts at a TX tap and always has.
func separableInBoth(before, after jsonReport) (jsonReport, jsonReport) {
	b, a := before, after
	b.Segments, a.Segments = nil, nil
	for i, s := range after.Segments {
		if i < len(before.Segments) && s.US != nil && before.Segments[i].US != nil {
			b.Segments = append(b.Segments, before.Segments[i])
			a.Segments = append(a.Segments, s)
		}
	}
	return b, a
}

// logFamilies logs the p50 of every segment of the same path traced over
// IPv4 and over IPv6.
func logFamilies(t *testing.T, r4, r6 jsonReport) {
	t.Helper()
	t.Logf("rtt p50: IPv4 %.1f us, IPv6 %.1f us", r4.RTT.P50, r6.RTT.P50)
	for i, s := range r6.Segments {
		if i >= len(r4.Segments) || s.US == nil || r4.Segments[i].US == nil {
			continue
		}
		t.Logf("%-8s %-10s %s->%s p50 IPv4 %7.1f us, IPv6 %7.1f us", s.Direction, s.Class, s.From, s.To, r4.Segments[i].US.P50, s.US.P50)
	}
}
