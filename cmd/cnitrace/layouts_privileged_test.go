package main

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/cmd/cnitrace-bench/nfqdelay"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Issue 4's layouts beyond the pod-to-pod-across-nodes trace of
// trace_privileged_test.go: a pod to another pod on its own node (bridged
// and routed), and the node itself (hostNetwork) to a remote pod. Each is
// checked for the kinds and netns of its points, every probe at every
// point, a delay landing in the right segment and losses in the right
// segment and direction.

// traceFrom traces from the lab namespace at src to target, with node 1 as
// the node, and decodes the report; the exit code must be want.
func traceFrom(t *testing.T, l *lab.Lab, src string, target netip.Addr, want int, extra ...string) jsonReport {
	t.Helper()
	args := []string{"trace", "--format", "json", "--netns", src, "--node-netns", l.Nodes[0].NSPath, "--to", target.String()}
	code, stdout, stderr := runCLI(t, append(args, extra...)...)
	if code != want {
		t.Fatalf("trace from %s to %s: exit code %d, want %d; stderr:\n%s", src, target, code, want, stderr)
	}
	return decodeReport(t, stdout)
}

// pointKinds lists the kinds of r's points, in path order.
func pointKinds(r jsonReport) []string {
	var kinds []string
	for _, p := range r.Points {
		kinds = append(kinds, p.Kind)
	}
	return kinds
}

// checkAllSeen checks that all n probes were answered and observed at both
// ends of every segment.
func checkAllSeen(t *testing.T, r jsonReport, n int) {
	t.Helper()
	if r.Probes.Sent != n || r.Probes.Received != n {
		t.Errorf("sent %d, received %d; want %d and %d", r.Probes.Sent, r.Probes.Received, n, n)
	}
	if got, want := len(r.Segments), 2*len(r.Points)-1; got != want {
		t.Errorf("got %d segments for %d points, want %d", got, len(r.Points), want)
	}
	for _, s := range r.Segments {
		if s.Seen != n || s.Lost != 0 {
			t.Errorf("segment %s->%s (%s): seen %d lost %d, want %d and 0", s.From, s.To, s.Direction, s.Seen, s.Lost, n)
		}
	}
}

// checkMoved compares segment p50s before and after a delay of d was
// added in class: that segment must be timed in both runs and grow by
// 75-125% of d, plus at most its own p50 before the delay (the injector's
// own cost, which is in it: the wire's delay line takes 100-450 us on a
// loaded 2-vCPU VM under -race and varies by as much; 2502 us for 2 ms was
// seen there), every other timed one by at most 300 us.
func checkMoved(t *testing.T, before, after jsonReport, class string, d time.Duration) {
	t.Helper()
	want := float64(d.Microseconds())
	found := false
	for i, s := range after.Segments {
		b := before.Segments[i]
		if s.US == nil || b.US == nil {
			// Not separable in one of the runs: another process on the
			// host turned RX timestamping on (docs/known-issues.md) and
			// the segment's time went into the next one.
			t.Logf("%-8s %-10s %s->%s not timed in both runs", s.Direction, s.Class, s.From, s.To)
			continue
		}
		moved := s.US.P50 - b.US.P50
		t.Logf("%-8s %-10s %s->%s p50 %8.1f -> %8.1f us (%+.1f)", s.Direction, s.Class, s.From, s.To, b.US.P50, s.US.P50, moved)
		if s.Class == class {
			found = true
			if hi := 1.25*want + max(b.US.P50, 0); moved < 0.75*want || moved > hi {
				t.Errorf("%s segment moved %.1f us with a %v delay there, want %.0f-%.0f", class, moved, d, 0.75*want, hi)
			}
		} else if math.Abs(moved) > 300 {
			t.Errorf("%s %s->%s (%s) moved %.1f us, want at most 300: the delay is in %s", s.Direction, s.From, s.To, s.Class, moved, class)
		}
	}
	if !found {
		t.Errorf("no %s segment in the report", class)
	}
}

// checkLossIn checks that the n probes lost about 30% in all, every loss in
// the one segment of class in direction, and that the verdict names it.
func checkLossIn(t *testing.T, r jsonReport, n int, class, direction string) {
	t.Helper()
	lost := r.Probes.Sent - r.Probes.Received
	if lost < n/10 || lost > n*6/10 { // 30%: far outside 3 sigma either way
		t.Errorf("lost %d of %d, want about 30%%", lost, n)
	}
	for _, s := range r.Segments {
		want := 0
		if s.Class == class && s.Direction == direction {
			want = lost
		}
		if s.Lost != want {
			t.Errorf("segment %s->%s (%s %s) lost %d, want %d", s.From, s.To, s.Direction, s.Class, s.Lost, want)
		}
	}
	if l := r.Verdict.Loss; l == nil || l.Class != class || l.Direction != direction || l.Lost != lost {
		t.Errorf("verdict loss %+v, want %d lost in %s (%s); text %q", l, lost, class, direction, r.Verdict.Text)
	}
}

// delayIn queues the echo requests of chain in the lab namespace ns,
// pinned at nsPath, to an NFQUEUE delayer that holds each for d, until the
// test ends.
func delayIn(t *testing.T, l *lab.Lab, ns *topology.NetNS, nsPath, chain string, d time.Duration) {
	t.Helper()
	const queue = 9
	del, err := nfqdelay.Open(ns, nfqdelay.Config{Queue: queue, Delay: d})
	if err != nil {
		t.Fatalf("open the delayer in %s: %v", nsPath, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- del.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("delayer: %v", err)
		}
		del.Close()
	})
	iptables(t, l, nsPath, "-I", chain, "-p", "icmp", "--icmp-type", "echo-request", "-j", "NFQUEUE", "--queue-num", strconv.Itoa(queue), "--queue-bypass")
}

// iptables runs iptables -w args in the lab namespace at nsPath.
func iptables(t *testing.T, l *lab.Lab, nsPath string, args ...string) {
	t.Helper()
	out, err := l.Command(t.Context(), nsPath, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("iptables %v in %s: %v\n%s", args, nsPath, err, out)
	}
}

// dropRequests drops 30% of the echo requests in chain of the namespace
// at nsPath.
func dropRequests(t *testing.T, l *lab.Lab, nsPath, chain string) {
	t.Helper()
	iptables(t, l, nsPath, "-A", chain, "-p", "icmp", "--icmp-type", "echo-request",
		"-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP")
}

func TestPrivilegedTraceSameNode(t *testing.T) {
	for _, topo := range lab.Layouts {
		t.Run(string(topo), func(t *testing.T) {
			l := labtest.NewWith(t, lab.Config{Layout: topo})
			n1 := l.Nodes[0]
			peer := n1.Sibling
			flags := []string{"--count", "30", "--interval", "10ms"}
			r := traceFrom(t, l, n1.Pod.NSPath, peer.Addr, cli.ExitOK, flags...)

			// pod, its veth, the peer's veth: no bridge point even on
			// the flannel topology (a bridge forwarding port to port
			// never shows the frame on its own device), no overlay.
			if got, want := pointKinds(r), []string{"pod", "veth", "veth"}; !slices.Equal(got, want) {
				t.Fatalf("point kinds %v, want %v", got, want)
			}
			p := r.Points
			if p[1].NetNS != p[2].NetNS || p[0].NetNS == p[1].NetNS || p[1].Interface == p[2].Interface {
				t.Errorf("points %+v: want the pod's in its netns, two different veths in the node's", p)
			}
			checkAllSeen(t, r, 30)
			if turn := r.Segments[len(r.Points)-1]; turn.Class != "peer" || turn.From != p[2].ID || turn.To != p[2].ID {
				t.Errorf("turnaround segment %+v, want class peer at %s", turn, p[2].ID)
			}

			// 2 ms in the peer pod's INPUT: the peer segment grows.
			delayIn(t, l, peer.NS, peer.NSPath, "INPUT", 2*time.Millisecond)
			checkMoved(t, r, traceFrom(t, l, n1.Pod.NSPath, peer.Addr, cli.ExitOK, flags...), "peer", 2*time.Millisecond)
			iptables(t, l, peer.NSPath, "-F")

			// 30% of the requests dropped in the peer: lost in peer.
			dropRequests(t, l, peer.NSPath, "INPUT")
			loss := []string{"--count", "60", "--interval", "5ms", "--timeout", "300ms"}
			checkLossIn(t, traceFrom(t, l, n1.Pod.NSPath, peer.Addr, cli.ExitFinding, loss...), 60, "peer", "request")
			iptables(t, l, peer.NSPath, "-F")

			if topo == lab.LayoutRouted {
				// Routed through the node: its FORWARD chain sees both
				// directions, and a drop there is forwarding's.
				if err := l.SetFaults(t.Context(), lab.Faults{ForwardReplyLoss: 0.3}); err != nil {
					t.Fatal(err)
				}
				checkLossIn(t, traceFrom(t, l, n1.Pod.NSPath, peer.Addr, cli.ExitFinding, loss...), 60, "forwarding", "reply")
			}
		})
	}
}

func TestPrivilegedTraceHostNetwork(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Faults: lab.Faults{Wire: true}})
	n1, target := l.Nodes[0], l.Nodes[1].Pod.Addr
	flags := []string{"--count", "30", "--interval", "20ms"}
	r := traceFrom(t, l, n1.NSPath, target, cli.ExitOK, flags...)

	if got, want := pointKinds(r), []string{"vxlan", "uplink"}; !slices.Equal(got, want) {
		t.Fatalf("point kinds %v, want %v: from the node there is no pod and no veth", got, want)
	}
	if r.Points[0].NetNS != r.Points[1].NetNS {
		t.Errorf("points in %s and %s, want both in the node's netns", r.Points[0].NetNS, r.Points[1].NetNS)
	}
	checkAllSeen(t, r, 30)

	delay := lab.Faults{Network: lab.Network{Request: lab.Impairment{Delay: 2 * time.Millisecond}}}
	if err := l.SetFaults(t.Context(), delay); err != nil {
		t.Fatal(err)
	}
	checkMoved(t, r, traceFrom(t, l, n1.NSPath, target, cli.ExitOK, flags...), "network", 2*time.Millisecond)

	loss := lab.Faults{Network: lab.Network{Request: lab.Impairment{Loss: 0.3}}}
	if err := l.SetFaults(t.Context(), loss); err != nil {
		t.Fatal(err)
	}
	checkLossIn(t, traceFrom(t, l, n1.NSPath, target, cli.ExitFinding, "--count", "60", "--interval", "5ms", "--timeout", "300ms"), 60, "network", "request")
}

// TestPrivilegedPodStackLossLocated drops 30% of the probes in the traced
// pod's own stack, requests in its OUTPUT chain or replies in its INPUT
// chain, on both topologies: no segment may be blamed, stack_loss counts
// them by direction, and the verdict names the source's own stack.
func TestPrivilegedPodStackLossLocated(t *testing.T) {
	for _, topo := range lab.Layouts {
		for _, tt := range []struct {
			faults    lab.Faults
			direction string
		}{{lab.Faults{PodRequestLoss: 0.3}, "request"}, {lab.Faults{PodReplyLoss: 0.3}, "reply"}} {
			t.Run(fmt.Sprintf("%s/%s", topo, tt.direction), func(t *testing.T) {
				l := labtest.NewWith(t, lab.Config{Layout: topo, Faults: tt.faults})
				args := append([]string{"trace", "--format", "json", "--count", "60", "--interval", "5ms", "--timeout", "300ms"}, l.TraceArgs()...)
				code, stdout, stderr := runCLI(t, args...)
				if code != cli.ExitFinding {
					t.Fatalf("exit %d, want %d (probes lost); stderr:\n%s", code, cli.ExitFinding, stderr)
				}
				r := decodeReport(t, stdout)
				lost := r.Probes.Sent - r.Probes.Received
				if lost < 6 || lost > 36 {
					t.Errorf("lost %d of 60, want about 18", lost)
				}
				want := r.Stack.Request
				if tt.direction == "reply" {
					want = r.Stack.Reply
				}
				if want != lost || r.Stack.Request+r.Stack.Reply+r.Stack.Unknown != lost {
					t.Errorf("stack loss %+v, want all %d in %s", r.Stack, lost, tt.direction)
				}
				for _, s := range r.Segments {
					if s.Lost != 0 {
						t.Errorf("segment %s->%s (%s) lost %d, want 0: the drop is in the pod's own stack", s.From, s.To, s.Direction, s.Lost)
					}
				}
				v := r.Verdict.Loss
				if v == nil || v.Direction != tt.direction || v.Lost != lost || (v.From != "socket" && v.To != "socket") {
					t.Errorf("verdict loss %+v, want %d lost between the socket and the pod (%s); text %q", v, lost, tt.direction, r.Verdict.Text)
				}
			})
		}
	}
}
