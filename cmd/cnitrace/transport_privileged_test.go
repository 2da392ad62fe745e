package main

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Issue 12: TCP SYN and UDP (DNS) probes end to end, on the lab's
// backends (every pod serves TCP lab.BackendPort and dnsmasq on
// lab.DNSPort).

// transportReport is what these tests read of the JSON report besides
// jsonReport.
type transportReport struct {
	Proto    string
	Port     int
	Replies  map[string]int
	Measures []string
	Backends *struct {
		At   string
		Seen []struct {
			Addr         string
			Port, Probes int
		}
	}
}

// transports are the protocols traced, each to a port the lab's backends
// serve, and the reply that answers there.
var transports = []struct {
	name, proto string
	port        int
	reply       string
}{
	{"tcp", "tcp", lab.BackendPort, "syn-ack"},
	{"dns", "udp", lab.DNSPort, "dns-reply"},
}

func traceProto(t *testing.T, l *lab.Lab, src string, to netip.Addr, proto string, port, want int, extra ...string) (jsonReport, transportReport) {
	t.Helper()
	args := []string{"trace", "--format", "json", "--netns", src, "--node-netns", l.Nodes[0].NSPath, "--to", to.String(),
		"--proto", proto, "--port", strconv.Itoa(port)}
	code, stdout, stderr := runCLI(t, append(args, extra...)...)
	if code != want {
		t.Fatalf("trace --proto %s --port %d to %s: exit %d, want %d; stderr:\n%s", proto, port, to, code, want, stderr)
	}
	var tr transportReport
	decodeInto(t, stdout, &tr)
	if tr.Proto != proto || tr.Port != port || len(tr.Measures) == 0 {
		t.Errorf("report says proto %q port %d measures %q, want %s %d and what it measures", tr.Proto, tr.Port, tr.Measures, proto, port)
	}
	return decodeReport(t, stdout), tr
}

// TestPrivilegedTransportAcrossNodes traces TCP and DNS probes from node
// 1's pod to node 2's on both layouts, on a lab with a Service (whose
// rules turn conntrack on in the nodes, as on a cluster): every probe at
// every point both ways, nothing left behind (checkNothingLeft), a 2 ms
// wire delay in network, and 30% of the requests (SYNs, queries) or of
// the replies (SYN-ACKs, answers) dropped by the lab's forward loss in
// node 1's FORWARD, or by its pod loss in the pod's own OUTPUT or INPUT,
// on that segment (or in the pod's stack) and direction.
func TestPrivilegedTransportAcrossNodes(t *testing.T) {
	for _, layout := range lab.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: layout, Service: true, Faults: lab.Faults{Wire: true}})
			n1, dst := l.Nodes[0], l.Nodes[1].Pod.Addr
			lossAt := map[string]string{"forward-request": "request bridge->vxlan", "forward-reply": "reply vxlan->bridge"}
			if layout == lab.LayoutRouted {
				lossAt = map[string]string{"forward-request": "request veth->vxlan", "forward-reply": "reply vxlan->veth"}
			}
			lossAt["pod-request"], lossAt["pod-reply"] = "stack request", "stack reply"
			for _, tp := range transports {
				t.Run(tp.name, func(t *testing.T) {
					before := snapshotLab(t, l)
					flags := []string{"--count", "30", "--interval", "20ms"}
					r, tr := traceProto(t, l, n1.Pod.NSPath, dst, tp.proto, tp.port, cli.ExitOK, flags...)
					checkAllSeen(t, r, 30)
					if tr.Replies[tp.reply] != 30 {
						t.Errorf("replies %v, want 30 %s", tr.Replies, tp.reply)
					}
					checkNothingLeft(t, l, before, tp.proto, tp.port)

					delay := lab.Faults{Network: lab.Network{Request: lab.Impairment{Delay: 2 * time.Millisecond}}}
					if err := l.SetFaults(t.Context(), delay); err != nil {
						t.Fatal(err)
					}
					delayed, _ := traceProto(t, l, n1.Pod.NSPath, dst, tp.proto, tp.port, cli.ExitOK, flags...)
					checkMoved(t, r, delayed, "network", 2*time.Millisecond)
					if err := l.SetFaults(t.Context(), lab.Faults{Wire: true}); err != nil {
						t.Fatal(err)
					}

					// 100 probes keep 30% loss well inside checkLossAt's 10% to
					// 60%; at 4 ms they are over in 0.7 s, before node 2
					// retransmits a lost SYN-ACK (1 s).
					for _, loss := range []struct {
						what string
						f    lab.Faults
					}{
						{"forward-request", lab.Faults{Wire: true, ForwardRequestLoss: 0.3}},
						{"forward-reply", lab.Faults{Wire: true, ForwardReplyLoss: 0.3}},
						{"pod-request", lab.Faults{Wire: true, PodRequestLoss: 0.3}},
						{"pod-reply", lab.Faults{Wire: true, PodReplyLoss: 0.3}},
					} {
						if err := l.SetFaults(t.Context(), loss.f); err != nil {
							t.Fatal(err)
						}
						lossy, _ := traceProto(t, l, n1.Pod.NSPath, dst, tp.proto, tp.port, cli.ExitFinding,
							"--count", "100", "--interval", "4ms", "--timeout", "300ms")
						t.Run(loss.what, func(t *testing.T) { checkLossAt(t, lossy, 100, lossAt[loss.what]) })
					}
					if err := l.SetFaults(t.Context(), lab.Faults{Wire: true}); err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
}

// TestPrivilegedTransportSameNode traces TCP and DNS probes to the pod's
// sibling on its own node, on both layouts.
func TestPrivilegedTransportSameNode(t *testing.T) {
	for _, layout := range lab.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: layout, Backends: true})
			n1 := l.Nodes[0]
			for _, tp := range transports {
				t.Run(tp.name, func(t *testing.T) {
					r, tr := traceProto(t, l, n1.Pod.NSPath, n1.Sibling.Addr, tp.proto, tp.port, cli.ExitOK, "--count", "30", "--interval", "10ms")
					if got, want := pointKinds(r), []string{"pod", "veth", "veth"}; !slices.Equal(got, want) {
						t.Fatalf("point kinds %v, want %v", got, want)
					}
					checkAllSeen(t, r, 30)
					if tr.Replies[tp.reply] != 30 {
						t.Errorf("replies %v, want 30 %s", tr.Replies, tp.reply)
					}
				})
			}
		})
	}
}

// TestPrivilegedTransportBaseline runs trace --baseline with TCP and DNS
// probes: the node netns sends the same probes, and both sources' answers
// are tied to their own SYNs and queries.
func TestPrivilegedTransportBaseline(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Backends: true})
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			const n = 30
			args := append([]string{"trace", "--format", "json", "--baseline", "--count", strconv.Itoa(n), "--interval", "10ms",
				"--proto", tp.proto, "--port", strconv.Itoa(tp.port)}, l.TraceArgs()...)
			code, stdout, stderr := runCLI(t, args...)
			if code != cli.ExitOK {
				t.Fatalf("trace --baseline --proto %s: exit %d, stderr:\n%s", tp.proto, code, stderr)
			}
			var r baselineReport
			decodeInto(t, stdout, &r)
			b := r.Baseline
			if b == nil || b.Pod == nil || b.Node == nil {
				t.Fatalf("no baseline block in:\n%s", stdout)
			}
			if r.Probes.Received != n || b.Sent != n || b.Received != n || b.Pairs != n || r.Probes.Ignored != 0 || b.Observations == 0 {
				t.Errorf("pod %d answered, node %d of %d, %d pairs, %d ignored, %d baseline observations; want %d, %d of %d, %d, 0, some",
					r.Probes.Received, b.Received, b.Sent, b.Pairs, r.Probes.Ignored, b.Observations, n, n, n, n)
			}
			t.Logf("%s: pod p50 %.1f us, node p50 %.1f us", tp.name, b.Pod.P50, b.Node.P50)
		})
	}
}
