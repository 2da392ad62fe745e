package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// TestPrivilegedTransportThroughService traces TCP and DNS probes to the
// lab's ClusterIP as kube-proxy's iptables and nftables modes build it:
// the path is the endpoints', the DNAT is shown where it happens (in
// `path` too), every probe is matched through it, and each probe's
// backend is counted (TCP probes, each on a 4-tuple of its own, reach
// both endpoints). Through the Service, a 2 ms wire delay lands in the
// network segment and 30% forward request loss in node 1's FORWARD, after
// the DNAT. An ICMP trace to the same address, which no kube-proxy mode
// translates, loses every probe and says to trace with --proto tcp or udp.
func TestPrivilegedTransportThroughService(t *testing.T) {
	for _, mode := range lab.ServiceModes {
		t.Run(string(mode), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Service: true, ServiceMode: mode, Faults: lab.Faults{Wire: true}})
			vip, eps := l.Service, l.ServiceEndpoints()
			for _, tc := range []struct {
				name, proto   string
				port, backend int
				reply         string
				minBackends   int
			}{
				{"tcp", "tcp", 80, lab.BackendPort, "syn-ack", 2},
				{"dns", "udp", 53, lab.DNSPort, "dns-reply", 1}, // one socket, one flow: one backend
			} {
				t.Run(tc.name, func(t *testing.T) {
					const n = 40
					r, tr := traceProto(t, l, l.Nodes[0].Pod.NSPath, vip, tc.proto, tc.port, cli.ExitOK, "--count", "40", "--interval", "10ms")
					var nat natReport
					_, stdout, _ := runCLI(t, "trace", "--format", "json", "--netns", l.Nodes[0].Pod.NSPath, "--node-netns", l.Nodes[0].NSPath,
						"--to", vip.String(), "--proto", tc.proto, "--port", strconv.Itoa(tc.port), "--count", "5", "--interval", "10ms")
					decodeInto(t, stdout, &nat)
					checkAllSeen(t, r, n)
					if tr.Replies[tc.reply] != n {
						t.Errorf("replies %v, want %d %s", tr.Replies, n, tc.reply)
					}
					isEP := func(a string) bool {
						for _, e := range eps {
							if e.String() == a {
								return true
							}
						}
						return false
					}
					if !isEP(nat.Translated) {
						t.Errorf("translated %q, want one of %v", nat.Translated, eps)
					}
					checkServiceRewrites(t, r, nat, vip.String(), isEP)
					b := tr.Backends
					if b == nil {
						t.Fatalf("no backends in the report")
					}
					sum := 0
					for _, s := range b.Seen {
						sum += s.Probes
						if !isEP(s.Addr) || s.Port != tc.backend || s.Probes == 0 {
							t.Errorf("backend %+v, want an endpoint of %v on port %d", s, eps, tc.backend)
						}
					}
					if sum != n || len(b.Seen) < tc.minBackends {
						t.Errorf("backends %+v: %d probes in all over %d, want %d over at least %d", b.Seen, sum, len(b.Seen), n, tc.minBackends)
					}
					t.Logf("backends at %s: %+v", b.At, b.Seen)
					if tc.proto == "tcp" {
						checkServiceFaults(t, l, r, isEP)
					}
				})
			}

			// The lab's nodes, as many a cluster's, have no route to the
			// ClusterIP: discovery stops there and the hint says why.
			t.Run("icmp", func(t *testing.T) {
				n1 := l.Nodes[0]
				code, stdout, stderr := runCLI(t, "trace", "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", vip.String(),
					"--count", "5", "--interval", "10ms", "--timeout", "200ms")
				if want := "hint: the node has no route to " + vip.String() + ": if it is a Service address, Services do not carry ICMP: trace with --proto tcp --port PORT or --proto udp --port PORT"; code != cli.ExitFailure || !strings.Contains(stderr, want) {
					t.Errorf("ICMP trace to the ClusterIP: exit %d, want %d and %q in:\n%s%s", code, cli.ExitFailure, want, stdout, stderr)
				}
			})
		})
	}
}

// TestPrivilegedTransportDenyICMP traces with a policy that drops node 1's
// pods' ICMP in FORWARD: the ICMP trace loses every probe where the
// policy drops it and says to use --proto tcp; the TCP trace to the same
// pod's open port gets every probe through.
func TestPrivilegedTransportDenyICMP(t *testing.T) {
	for _, layout := range lab.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: layout, Backends: true, Faults: lab.Faults{DenyICMP: true}})
			n1, dst := l.Nodes[0], l.Nodes[1].Pod.Addr
			at := "request bridge->vxlan"
			if layout == lab.LayoutRouted {
				at = "request veth->vxlan"
			}
			r := traceFrom(t, l, n1.Pod.NSPath, dst, cli.ExitFinding, "--count", "20", "--interval", "10ms", "--timeout", "200ms")
			if r.Probes.Received != 0 {
				t.Errorf("ICMP through the policy: %d of %d answered, want none", r.Probes.Received, r.Probes.Sent)
			}
			checkLossAtAll(t, r, at)
			if !strings.Contains(r.Verdict.Text, "--proto tcp --port PORT") {
				t.Errorf("verdict %q does not suggest --proto tcp", r.Verdict.Text)
			}
			tcp, _ := traceProto(t, l, n1.Pod.NSPath, dst, "tcp", lab.BackendPort, cli.ExitOK, "--count", "20", "--interval", "10ms")
			checkAllSeen(t, tcp, 20)
		})
	}
}

// checkLossAtAll checks every probe of r was lost, all on the segment at
// (as checkLossAt names it).
func checkLossAtAll(t *testing.T, r jsonReport, at string) {
	t.Helper()
	kind := map[string]string{}
	for _, p := range r.Points {
		kind[p.ID] = p.Kind
	}
	for _, s := range r.Segments {
		want := 0
		if s.Direction+" "+kind[s.From]+"->"+kind[s.To] == at {
			want = r.Probes.Sent
		}
		if s.Lost != want {
			t.Errorf("segment %s %s->%s lost %d, want %d (all at %s)", s.Direction, kind[s.From], kind[s.To], s.Lost, want, at)
		}
	}
}

// checkServiceRewrites checks where a trace through the Service at vip
// saw the DNAT: the request leaves the pod for vip and reaches the uplink
// for an endpoint, rewritten between the veth and the vxlan device (with
// br_netfilter, as here, before the bridge's own tap); the reply leaves
// the uplink from that endpoint and reaches the pod from vip again.
func checkServiceRewrites(t *testing.T, r jsonReport, nat natReport, vip string, isEP func(string) bool) {
	t.Helper()
	first, last := nat.Points[0], nat.Points[len(nat.Points)-1]
	if first.Request == nil || first.Request.Dst != vip || last.Request == nil || !isEP(last.Request.Dst) {
		t.Errorf("request destinations: %+v at the pod, %+v at the uplink; want %s, then an endpoint", first.Request, last.Request, vip)
	}
	if last.Reply == nil || !isEP(last.Reply.Src) || first.Reply == nil || first.Reply.Src != vip {
		t.Errorf("reply sources: %+v at the uplink, %+v at the pod; want an endpoint, then %s", last.Reply, first.Reply, vip)
	}
	from, to, old, new, ok := rewriteOf(r, nat, "request", "dst")
	if !ok || old != vip || !isEP(new) || from == "pod" || to == "uplink" {
		t.Errorf("request dst rewrite %s->%s %s->%s (found %v), want %s->endpoint between the veth and the vxlan device; rewrites %+v",
			from, to, old, new, ok, vip, nat.Rewrites)
	}
	if _, _, old, new, ok := rewriteOf(r, nat, "reply", "src"); !ok || !isEP(old) || new != vip {
		t.Errorf("reply src rewrite %s->%s (found %v), want endpoint->%s", old, new, ok, vip)
	}
}

// checkServiceFaults runs what only a TCP trace through the Service shows
// on a lab with a wire: `path` names the translation it found, a 2 ms
// request delay on the wire moves into the network segment of r's
// successor, and 30% forward request loss is all lost on the segment
// holding node 1's FORWARD, after the DNAT.
func checkServiceFaults(t *testing.T, l *lab.Lab, r jsonReport, isEP func(string) bool) {
	t.Helper()
	n1, vip, port := l.Nodes[0], l.Service, lab.ServicePorts[0].Port
	code, stdout, stderr := runCLI(t, "path", "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", vip.String(),
		"--proto", "tcp", "--port", strconv.Itoa(int(port)))
	prefix := "(the node translates " + vip.String() + " to "
	i := strings.Index(stdout, prefix)
	ep, _, _ := strings.Cut(stdout[max(i, 0)+len(prefix):], ": DNAT")
	if code != cli.ExitOK || i < 0 || !isEP(ep) {
		t.Errorf("path to the service: exit %d, output:\n%s%s\nwant %q, an endpoint and \": DNAT\"", code, stdout, stderr, prefix)
	}

	delay := lab.Faults{Network: lab.Network{Request: lab.Impairment{Delay: 2 * time.Millisecond}}}
	if err := l.SetFaults(t.Context(), delay); err != nil {
		t.Fatal(err)
	}
	delayed, _ := traceProto(t, l, n1.Pod.NSPath, vip, "tcp", int(port), cli.ExitOK, "--count", "40", "--interval", "10ms")
	checkMoved(t, r, delayed, "network", 2*time.Millisecond)

	// 100 probes at 4 ms, as TestPrivilegedTransportAcrossNodes: over
	// before a lost SYN's retransmission could matter.
	if err := l.SetFaults(t.Context(), lab.Faults{Wire: true, ForwardRequestLoss: 0.3}); err != nil {
		t.Fatal(err)
	}
	lossy, _ := traceProto(t, l, n1.Pod.NSPath, vip, "tcp", int(port), cli.ExitFinding, "--count", "100", "--interval", "4ms", "--timeout", "300ms")
	checkLossAt(t, lossy, 100, "request bridge->vxlan")
	if err := l.SetFaults(t.Context(), lab.Faults{Wire: true}); err != nil {
		t.Fatal(err)
	}
}
