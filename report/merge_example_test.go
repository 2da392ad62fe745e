package report_test

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

// Two nodes, each a pod behind a routed veth: node a traces (with
// --for-merge its Recorder keeps the run's stamps), node b listens
// (RoleListen: the probes come in along its path toward its pod). Node b's
// clock is a second ahead of a's; the request wire takes 30 us, the reply
// wire 50 us, node b's pod answers in 20 us. Merge matches the probes by
// token and times every segment on its own node's clock; the wire's round
// trip (80 us) needs no clock. Its split does: probes that all take the
// same time cannot tell 30/50 from 40/40 (any offset in a 80 us window
// fits them), so the estimate is the middle, +/-40 us, and the report says
// the bound is too wide to tell the directions apart. Real probes, whose
// times vary, bound it far tighter (docs/two-nodes.md).
func ExampleMerge() {
	pathA := &topology.Path{
		Target: netip.MustParseAddr("10.244.2.2"),
		Source: topology.Source{NetNS: "net:[4026532301]", Interface: "eth0", Addr: netip.MustParseAddr("10.244.1.2")},
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", NetNS: "net:[4026532301]", Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "eth0", NetNS: "net:[4026531840]", Kind: topology.KindUplink, RequestDir: topology.TX},
		},
	}
	pathB := &topology.Path{ // as listen discovers it: from b's pod toward a's
		Target: netip.MustParseAddr("10.244.1.2"),
		Source: topology.Source{NetNS: "net:[4026532401]", Interface: "eth0", Addr: netip.MustParseAddr("10.244.2.2")},
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", NetNS: "net:[4026532401]", Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "eth0", NetNS: "net:[4026532400]", Kind: topology.KindUplink, RequestDir: topology.TX},
		},
	}
	const run = 42
	recA, _ := report.NewRecorder(pathA, report.RoleTrace, run)
	recB, _ := report.NewRecorder(pathB, report.RoleListen)
	start := time.Unix(1_800_000_000, 0)
	for seq := range 3 {
		payload := probe.Payload{RunID: run, Seq: uint32(seq)}.Marshal(56)
		t := start.Add(time.Duration(seq) * 100 * time.Millisecond)
		see := func(rec *report.Recorder, point string, dir topology.Dir, icmpType uint8, after, clock time.Duration) {
			rec.Add(capture.Observation{Point: point, Dir: dir, ICMPType: icmpType, Stamp: capture.StampCopy, At: t.Add(after + clock), Payload: payload})
		}
		us := time.Microsecond
		see(recA, "p0", topology.TX, 8, 0, 0)               // the request leaves a's pod
		see(recA, "p1", topology.TX, 8, 10*us, 0)           // and a's uplink
		see(recB, "p1", topology.RX, 8, 40*us, time.Second) // reaches b's uplink, 30 us later
		see(recB, "p0", topology.RX, 8, 45*us, time.Second) // and b's pod
		see(recB, "p0", topology.TX, 0, 65*us, time.Second) // which answers in 20 us
		see(recB, "p1", topology.TX, 0, 70*us, time.Second) // the reply leaves b
		see(recA, "p1", topology.RX, 0, 120*us, 0)          // reaches a, 50 us later
		see(recA, "p0", topology.RX, 0, 125*us, 0)          // and a's pod
	}
	// What trace --for-merge --format json writes, cut down to what Merge
	// needs: the report's header and the stamps.
	src := &report.Result{Target: "10.244.2.2", Probes: report.ProbeCounts{Sent: 3, Received: 3},
		RTT: &report.Dist{P50: 125, P90: 125, P99: 125, Max: 125, Min: 125}, RTTSource: report.RTTCapture, Stamps: recA.Stamps("node-a")}
	merged, err := report.Merge(src, recB.Stamps("node-b"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := report.Render(os.Stdout, merged[0], report.FormatText); err != nil {
		fmt.Println(err)
	}
	// Output:
	// cnitrace: 3 probes to 10.244.2.2 from unknown source: 3 answered, 0 lost
	// nodes: a = node-a (trace, pod 10.244.1.2), b = node-b (listen, pod 10.244.2.2); run 000000000000002a: 3 of its probes seen on both nodes, 0 on the source node only
	// wire round trip: p50 80.0 us, p90 80.0 us, p99 80.0 us, max 80.0 us (source uplink out and back, minus the target uplink's in and out: no clock agreement needed)
	// clock offset: target minus source +999990.0 us at the first probe, no drift fitted (a run under 2 s), bound +/-40.0 us, from 3 probes
	// wire request: p50 40.0 us, p90 40.0 us, p99 40.0 us, max 40.0 us; wire reply: p50 40.0 us, p90 40.0 us, p99 40.0 us, max 40.0 us; each probe's within +/-40.0 us
	// directions: the offset bound (+/-40.0 us) is too wide to tell the directions apart: the one-way p50s differ by 0.0 us and the p90s by 0.0 us, within twice the bound
	// rtt: p50 125.0 us, p90 125.0 us, p99 125.0 us, max 125.0 us (send call to the receive stamp on the source interface, as ping measures)
	//      p50 125.0 us, p90 125.0 us, p99 125.0 us, max 125.0 us on the path (source interface out to source interface in)
	//
	// points:
	//   a0  eth0@net:[4026532301]  pod
	//   a1  eth0@net:[4026531840]  uplink
	//   b0  eth0@net:[4026532400]  uplink
	//   b1  eth0@net:[4026532401]  pod
	//
	//   dir      class    segment             p50 us  p90 us  p99 us  max us  seen  lost  notes
	//   request  egress   a0 eth0 -> a1 eth0    10.0    10.0    10.0    10.0     3     0  n      ########
	//   request  network  a1 eth0 -> b0 eth0    40.0    40.0    40.0    40.0     3     0  nc     ##############################
	//   request  ingress  b0 eth0 -> b1 eth0     5.0     5.0     5.0     5.0     3     0  n      ####
	//   request  target   b1 eth0 rx -> tx      20.0    20.0    20.0    20.0     3     0  n      ###############
	//   reply    egress   b1 eth0 -> b0 eth0     5.0     5.0     5.0     5.0     3     0  n      ####
	//   reply    network  b0 eth0 -> a1 eth0    40.0    40.0    40.0    40.0     3     0  nc     ##############################
	//   reply    ingress  a1 eth0 -> a0 eth0     5.0     5.0     5.0     5.0     3     0  n      ####
	//   notes: n under 10 samples (p90, p99 = max); c one-way across two clocks: within the offset bound
	//
	// verdict: the largest share of the median RTT (32%) is network between eth0@net:[4026531840] and eth0@net:[4026532400] (request)
}

// What `cnitrace listen` writes: a Recorder of RoleListen on the target
// node's path (from its pod toward the probes' source) keeps every probe of
// any run that crosses it, and EncodeStamps writes the record. Here one
// echo request and its reply on a node with two points; DecodeMergeInput
// reads the file back for Merge.
func ExampleRecorder() {
	path := &topology.Path{
		Target: netip.MustParseAddr("10.244.1.2"),
		Source: topology.Source{NetNS: "net:[4026532401]", Interface: "eth0", Addr: netip.MustParseAddr("10.244.2.2")},
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", NetNS: "net:[4026532401]", Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "eth0", NetNS: "net:[4026532400]", Kind: topology.KindUplink, RequestDir: topology.TX},
		},
	}
	rec, err := report.NewRecorder(path, report.RoleListen)
	if err != nil {
		fmt.Println(err)
		return
	}
	t := time.Unix(1_800_000_000, 0).UTC()
	rec.Window(t.Add(-time.Second), t.Add(time.Second))
	payload := probe.Payload{RunID: 0x2a, Seq: 7}.Marshal(56)
	for i, s := range []struct {
		point    string
		dir      topology.Dir
		icmpType uint8
	}{{"p1", topology.RX, 8}, {"p0", topology.RX, 8}, {"p0", topology.TX, 0}, {"p1", topology.TX, 0}} {
		rec.Add(capture.Observation{Point: s.point, Dir: s.dir, ICMPType: s.icmpType, At: t.Add(time.Duration(i) * 5 * time.Microsecond),
			Dst: netip.MustParseAddr("10.244.2.2"), Payload: payload})
	}
	var b strings.Builder
	if err := report.EncodeStamps(&b, rec.Stamps("worker-2")); err != nil {
		fmt.Println(err)
		return
	}
	_, st, err := report.DecodeMergeInput(strings.NewReader(b.String()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s file of %s: %d run, steps", st.Kind, st.Node, len(st.Runs))
	for _, s := range st.Steps {
		fmt.Printf(" %s/%s", s.Point, s.Dir)
	}
	p := st.Runs[0].Probes[0]
	fmt.Printf("\nrun %s seq %d: %v ns after the first, to %s\n", st.Runs[0].RunID, p.Seq, []int64{p.At[1] - p.At[0], p.At[2] - p.At[0], p.At[3] - p.At[0]}, p.Dst)
	// Output:
	// cnitrace-listen file of worker-2: 1 run, steps p1/rx p0/rx p0/tx p1/tx
	// run 000000000000002a seq 7: [5000 10000 15000] ns after the first, to 10.244.2.2
}
