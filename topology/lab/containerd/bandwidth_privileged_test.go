//go:build linux

package containerd_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/containerd/containerdtest"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Shaping of the bandwidth tests: 1 Mbit/s with a 2000-byte burst (a
// whole flood datagram fits), so the plugin's TBF holds 25 ms of queue
// plus the burst, about 41 ms at the rate; a flood of 1.3 Mbit/s keeps it
// full, as the busy pod of the issue did.
const (
	shapeRate  = 1_000_000
	shapeBurst = 16_000
	floodSize  = 1000
	floodRate  = 1.3 * shapeRate
)

// TestPrivilegedRealBandwidth traces from a pod of the reference bridge
// plugin with the bandwidth plugin chained after it, shaping one
// direction at a time, to node 2's pod, while a flood keeps the shaper's
// queue full. Egress shaping is a TBF on an ifb device that the host
// veth's ingress is redirected to: the queue lies between the host veth
// and the bridge, in the request direction. Ingress shaping is a TBF on
// the host veth itself: the queue lies between the bridge and the host
// veth, in the reply direction. Either way every probe waits in it, and
// the verdict names the segment by its floor against the same points the
// other way.
func TestPrivilegedRealBandwidth(t *testing.T) {
	containerdtest.Require(t)
	loadIFB(t)
	checkRootNetNSUnchanged(t)
	for _, tt := range []struct {
		name      string
		shape     containerd.Bandwidth
		direction string
	}{
		{"egress", containerd.Bandwidth{EgressRate: shapeRate, EgressBurst: shapeBurst}, report.DirRequest},
		{"ingress", containerd.Bandwidth{IngressRate: shapeRate, IngressBurst: shapeBurst}, report.DirReply},
	} {
		t.Run(tt.name, func(t *testing.T) { shapedTrace(t, tt.shape, tt.direction) })
	}
}

// shapedTrace runs one case of TestPrivilegedRealBandwidth.
func shapedTrace(t *testing.T, shape containerd.Bandwidth, direction string) {
	l := labtest.New(t)
	node, target := l.Nodes[0], l.Nodes[1].Pod.Addr
	network := containerd.NodeBridge(node)
	network.IPMasq = false // node 2 routes the pod CIDR back
	conf, err := containerd.BridgeBandwidthConfList(network, shape)
	if err != nil {
		t.Fatal(err)
	}
	d := containerdtest.Start(t, node, containerd.Config{ConfList: conf})
	pod := runRealPod(t, d, "web")

	idle := trace(t, pod.NS, node.NS, target, quick)
	checkPoints(t, idle, topology.TurnNetwork, wantPoint{topology.KindPod, pod.NS}, wantPoint{topology.KindVeth, node.NS},
		wantPoint{topology.KindBridge, node.NS}, wantPoint{topology.KindVXLAN, node.NS}, wantPoint{topology.KindUplink, node.NS})
	checkAllSeen(t, idle.Report, quick.count)

	if direction == report.DirRequest {
		flood(t, pod.NS, network.Gateway, floodSize, floodRate) // out of the pod, through the ifb
	} else {
		flood(t, node.NS, pod.Addr, floodSize, floodRate) // into the pod, through the host veth's TBF
	}
	time.Sleep(200 * time.Millisecond) // the queue fills in about 40 ms
	shaped := trace(t, pod.NS, node.NS, target, run{count: 50, interval: 20 * time.Millisecond, timeout: time.Second})
	checkQueuedIn(t, shaped.Report, direction)
}

// checkQueuedIn checks that the shaper's queue is where it is: in the
// forwarding segment between the host veth and the bridge in direction
// (timed from the veth when the bridge's stamp was inherited), holding
// most of every round trip, every other segment a small part; that the
// verdict names it by its floor, far above the same points' the other
// way; and that whatever the full queue dropped was lost there too.
func checkQueuedIn(t *testing.T, r *report.Result, direction string) {
	t.Helper()
	v := r.Verdict
	if v.Basis != report.BasisFloor || v.Class != report.ClassForwarding || v.Direction != direction || v.Floor == nil {
		t.Fatalf("verdict %+v, want a standing delay in forwarding (%s): %s", v, direction, v.Text)
	}
	var queue report.Segment
	for _, s := range r.Segments {
		if s.From == v.From && s.To == v.To && s.Direction == v.Direction {
			queue = s
		}
	}
	from := queue.From
	if queue.MergedFrom != "" {
		from = queue.MergedFrom
	}
	kinds := map[string]string{}
	for _, p := range r.Points {
		kinds[p.ID] = p.Kind
	}
	wantFrom := map[string]string{report.DirRequest: "veth", report.DirReply: "bridge"}[direction]
	if kinds[from] != wantFrom {
		t.Errorf("the queue is timed from %s (%s), want the %s in the %s direction", from, kinds[from], wantFrom, direction)
	}
	if queue.US == nil || r.PathRTT == nil {
		t.Fatalf("the queue's segment %s is not timed, or the path RTT is missing", describe(queue))
	}
	if queue.US.P50 < 0.8*r.PathRTT.P50 {
		t.Errorf("the queue's segment %s holds %+v of a path RTT of %+v, want at least 80%% of the median", describe(queue), queue.US, r.PathRTT)
	}
	same := func(s report.Segment) bool {
		return s.From == queue.From && s.To == queue.To && s.Direction == queue.Direction
	}
	for _, s := range r.Segments {
		if s.US != nil && !same(s) && s.US.P50 > 0.05*queue.US.P50 {
			t.Errorf("segment %s has p50 %.1f us, want under 5%% of the queue's %.1f us", describe(s), s.US.P50, queue.US.P50)
		}
		if s.Lost > 0 && !same(s) {
			t.Errorf("segment %s lost %d probes: the full queue drops where it is", describe(s), s.Lost)
		}
	}
	if f := v.Floor; f.FloorUS < 10*f.ReferenceUS || f.Share < 0.5 || f.RefDirection == direction {
		t.Errorf("floor %+v: want one far above the reference, the other direction, and half the fastest round trip at least", *f)
	}
}

// loadIFB loads the ifb module when modprobe is there: the bandwidth
// plugin's egress shaping needs it, and loading it creates ifb0 and ifb1
// in the root netns, which checkRootNetNSUnchanged must see before.
func loadIFB(t *testing.T) {
	t.Helper()
	if modprobe, err := exec.LookPath("modprobe"); err == nil {
		if out, err := exec.Command(modprobe, "ifb").CombinedOutput(); err != nil {
			t.Logf("modprobe ifb: %v: %s (the kernel may have it built in)", err, out)
		}
	}
}
