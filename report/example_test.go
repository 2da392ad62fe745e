package report_test

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

// A pod's eth0 and the node side of its veth, three probes to the node's
// own address on a routed (ptp) node: the requests end at the host veth,
// where the node's own stack answers them (Turnaround: topology.TurnNode),
// and each packet is seen once per point and direction. The observations go to an Accumulator as the capture's sink
// hands them over in a live run (capture.Config.Sink = acc.Add), and each
// probe once the prober is done with it (probe.Config.Sink calling
// acc.AddProbe); once the run is over, Result times every segment. The probe socket got a SCHED
// stamp for every request, so the RTT runs from the kernel's send stamp,
// while the ping-like RTT starts at the send call.
func Example() {
	path := &topology.Path{
		Target: netip.MustParseAddr("10.244.1.1"),
		Source: topology.Source{NetNS: "net:[4026532301]", Interface: "eth0", Addr: netip.MustParseAddr("10.244.1.2")},
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", NetNS: "net:[4026532301]", Ifindex: 2, Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "veth1", NetNS: "net:[4026531840]", Ifindex: 7, Kind: topology.KindVeth, RequestDir: topology.RX},
		},
		Turnaround: topology.TurnNode,
	}
	const run = 42 // the run id of the probes' tokens (probe.Config.RunID)
	acc, err := report.NewAccumulator(path, []report.ProbeSource{{RunID: run}})
	if err != nil {
		fmt.Println(err)
		return
	}
	start := time.Unix(1_800_000_000, 0)
	probes := &probe.Result{RunID: run, Target: path.Target}
	for seq := range 3 {
		t0 := start.Add(time.Duration(seq) * time.Second)
		sent := t0.Add(-20 * time.Microsecond) // the send call, 20 us before eth0 sees the request
		payload := probe.Payload{RunID: run, Seq: uint32(seq), SentAt: sent}.Marshal(56)
		see := func(point string, dir topology.Dir, icmpType uint8, after time.Duration) {
			acc.Add(capture.Observation{
				Point: point, Dir: dir, ICMPType: icmpType, Stamp: capture.StampSKB,
				At: t0.Add(after), Payload: payload,
			})
		}
		see("p0", topology.TX, 8, 0)                                         // request leaves the pod
		see("p1", topology.RX, 8, 5*time.Microsecond)                        // reaches the node
		see("p1", topology.TX, 0, time.Duration(90+seq*10)*time.Microsecond) // reply back at the veth
		see("p0", topology.RX, 0, time.Duration(91+seq*10)*time.Microsecond) // and in the pod
		// The prober is done with the probe: source 0, the traced one.
		acc.AddProbe(0, probe.Probe{
			Seq:        uint32(seq),
			SentAt:     sent,
			SchedAt:    t0.Add(-time.Microsecond), // queued on eth0
			ReceivedAt: t0.Add(time.Duration(100+seq*10) * time.Microsecond),
			Deadline:   sent.Add(time.Second), // when the prober would have given up on it
		})
	}
	// The run's result: its probes went to AddProbe; its counters (socket
	// drops, late replies) are zero here.
	r, err := acc.Result(report.Recorded{Probes: []*probe.Result{probes}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := report.Render(os.Stdout, r, report.FormatText); err != nil {
		fmt.Println(err)
	}
	// Output:
	// cnitrace: 3 probes to 10.244.1.1 from eth0@net:[4026532301] (10.244.1.2): 3 answered, 0 lost
	// rtt: p50 102.0 us, p90 112.0 us, p99 112.0 us, max 112.0 us (kernel send stamp to the receive stamp on the source interface)
	//      p50 121.0 us, p90 131.0 us, p99 131.0 us, max 131.0 us as ping measures (send call to the receive stamp on the source interface)
	//      p50 101.0 us, p90 111.0 us, p99 111.0 us, max 111.0 us on the path (source interface out to source interface in)
	//      p50 130.0 us, p90 140.0 us, p99 140.0 us, max 140.0 us at the probe socket (user-space times at both ends)
	// clocks: send kernel-sched 3; receive capture 3
	//
	// points:
	//   p0  eth0@net:[4026532301]   pod
	//   p1  veth1@net:[4026531840]  veth
	//
	//   dir      class    segment              p50 us  p90 us  p99 us  max us  seen  lost  notes
	//   request  egress   p0 eth0 -> p1 veth1     5.0     5.0     5.0     5.0     3     0  n      ##
	//   request  node     p1 veth1 rx -> tx      95.0   105.0   105.0   105.0     3     0  n      ##############################
	//   reply    ingress  p1 veth1 -> p0 eth0     1.0     1.0     1.0     1.0     3     0  n      #
	//   notes: n under 10 samples (p90, p99 = max)
	//
	// verdict: 100% of the latency above the fastest probe (p50 +10.0 us) is in node beyond veth1@net:[4026531840] (out and back: the node's own stack, which answers the probes itself)
}

// A trace with a baseline (trace --baseline): source 0 is the pod, source 1
// the node's own socket, probing the same remote target with a run id of
// its own. The node's packets cross the uplink too; the Accumulator sets
// them aside, and Result compares both paths' round trips, each from the
// kernel's send stamp to the reply's capture at the last point before its
// socket: the pod's eth0 and the node's uplink.
func ExampleAccumulator_baseline() {
	path := &topology.Path{
		Target: netip.MustParseAddr("10.0.0.9"),
		Source: topology.Source{NetNS: "net:[4026532301]", Interface: "eth0", Addr: netip.MustParseAddr("10.244.1.2")},
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", NetNS: "net:[4026532301]", Ifindex: 2, Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "veth1", NetNS: "net:[4026531840]", Ifindex: 7, Kind: topology.KindVeth, RequestDir: topology.RX},
			{ID: "p2", Interface: "eth0", NetNS: "net:[4026531840]", Ifindex: 2, Kind: topology.KindUplink, RequestDir: topology.TX},
		},
	}
	const podRun, nodeRun = 42, 43
	acc, err := report.NewAccumulator(path, []report.ProbeSource{
		{RunID: podRun},
		{RunID: nodeRun, NetNS: "net:[4026531840]"}, // the baseline
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	start := time.Unix(1_800_000_000, 0)
	pod, node := &probe.Result{RunID: podRun}, &probe.Result{RunID: nodeRun}
	// send records probe seq of a run sent at t0 (SCHED stamp) and its
	// packets seen at the points, each after its offset from t0.
	send := func(r *probe.Result, seq int, t0 time.Time, seen map[string][2]time.Duration) {
		payload := probe.Payload{RunID: r.RunID, Seq: uint32(seq), SentAt: t0}.Marshal(56)
		for _, pt := range path.Points {
			if at, ok := seen[pt.ID]; ok {
				acc.Add(capture.Observation{Point: pt.ID, Dir: pt.RequestDir, ICMPType: 8, At: t0.Add(at[0]), Payload: payload})
				acc.Add(capture.Observation{Point: pt.ID, Dir: pt.RequestDir.Reverse(), ICMPType: 0, At: t0.Add(at[1]), Payload: payload})
			}
		}
		r.Probes = append(r.Probes, probe.Probe{Seq: uint32(seq), SentAt: t0, SchedAt: t0, ReceivedAt: t0.Add(time.Millisecond)})
	}
	us := func(request, reply float64) [2]time.Duration {
		return [2]time.Duration{time.Duration(request * 1e3), time.Duration(reply * 1e3)}
	}
	for seq := range 3 {
		t0 := start.Add(time.Duration(seq) * 10 * time.Millisecond)
		extra := float64(seq) // the pod path has some jitter
		send(pod, seq, t0, map[string][2]time.Duration{"p0": us(1, 121+extra), "p1": us(6, 115+extra), "p2": us(15, 105)})
		send(node, seq, t0.Add(5*time.Millisecond), map[string][2]time.Duration{"p2": us(4, 94)})
	}
	r, err := acc.Result(report.Recorded{Probes: []*probe.Result{pod, node}})
	if err != nil {
		fmt.Println(err)
		return
	}
	b := r.Baseline
	fmt.Printf("from %s: pod p50 %.1f us (at %s), node p50 %.1f us (at %s), overhead p50 %.1f us over %d pairs\n",
		b.NetNS, b.Pod.P50, b.PodAt, b.Node.P50, b.NodeAt, b.Overhead.P50, b.Pairs)
	fmt.Printf("%d baseline observations set aside, %d ignored\n", b.Observations, r.Probes.Ignored)
	// Output:
	// from net:[4026531840]: pod p50 122.0 us (at p0), node p50 94.0 us (at p2), overhead p50 28.0 us over 3 pairs
	// 6 baseline observations set aside, 0 ignored
}
