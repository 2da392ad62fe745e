package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

const baselineRun = 0x99aabbccddeeff00

// pingRun is a synthetic side of a baseline comparison of len(rtts)
// probes: probe i has a SCHED stamp 10 us after its send call and its
// reply captured at point at rtts[i] after that stamp, then read 30 us
// later; a negative RTT means no reply. offset shifts the whole run, as
// the baseline run starts half an interval after the pod's.
func pingRun(runID uint64, offset time.Duration, at string, rtts ...float64) baselinePath {
	base := time.Unix(1_800_000_000, 0).Add(offset)
	side := baselinePath{Probes: &probe.Result{RunID: runID, Size: 56}, Received: map[uint32]time.Time{}, At: at}
	for i, rtt := range rtts {
		sent := base.Add(time.Duration(i) * interval)
		p := probe.Probe{Seq: uint32(i), SentAt: sent, SchedAt: sent.Add(10 * time.Microsecond)}
		if rtt >= 0 {
			side.Received[p.Seq] = p.SchedAt.Add(us(rtt)[0])
			p.ReceivedAt = side.Received[p.Seq].Add(30 * time.Microsecond)
		}
		side.Probes.Probes = append(side.Probes.Probes, p)
	}
	return side
}

// pod and node are the two sides of a comparison on flannelPath.
func pod(rtts ...float64) baselinePath { return pingRun(testRun, 0, "p0", rtts...) }
func node(rtts ...float64) baselinePath {
	return pingRun(baselineRun, interval/2, "p3", rtts...)
}

func TestCompareBaseline(t *testing.T) {
	tests := []struct {
		name      string
		pod, node []float64
		want      *Baseline
	}{{
		name: "constant overhead",
		pod:  []float64{140, 150, 160, 170, 180},
		node: []float64{100, 110, 120, 130, 140},
		want: &Baseline{
			Clock: BaselineCapture, PodAt: "p0", NodeAt: "p3",
			Sent: 5, Received: 5, Pairs: 5,
			Pod:      &Dist{P50: 160, P90: 180, P99: 180, Max: 180, Min: 140},
			Node:     &Dist{P50: 120, P90: 140, P99: 140, Max: 140, Min: 100},
			Overhead: &Overhead{P50: 40, Pairs: &Spread{P10: 40, P50: 40, P90: 40}},
		},
	}, {
		// The medians' difference and the pairs' differ: pairs keep the
		// probe-by-probe spread, including a pair where the node was
		// slower.
		name: "spread and a negative pair",
		pod:  []float64{100, 200, 130, 120, 110},
		node: []float64{90, 80, 150, 100, 70},
		want: &Baseline{
			Clock: BaselineCapture, PodAt: "p0", NodeAt: "p3",
			Sent: 5, Received: 5, Pairs: 5,
			Pod:  &Dist{P50: 120, P90: 200, P99: 200, Max: 200, Min: 100},
			Node: &Dist{P50: 90, P90: 150, P99: 150, Max: 150, Min: 70},
			// differences 10, 120, -20, 20, 40 sorted: -20 10 20 40 120
			Overhead: &Overhead{P50: 30, Pairs: &Spread{P10: -20, P50: 20, P90: 120}},
		},
	}, {
		// Pod seq 1 and node seq 3 unanswered: both distributions keep
		// their other answers, the pairs only seqs 0, 2 and 4.
		name: "missing replies on either path",
		pod:  []float64{150, -1, 170, 160, 155},
		node: []float64{100, 105, 110, -1, 120},
		want: &Baseline{
			Clock: BaselineCapture, PodAt: "p0", NodeAt: "p3",
			Sent: 5, Received: 4, Pairs: 3,
			Pod:      &Dist{P50: 155, P90: 170, P99: 170, Max: 170, Min: 150},
			Node:     &Dist{P50: 105, P90: 120, P99: 120, Max: 120, Min: 100},
			Overhead: &Overhead{P50: 50, Pairs: &Spread{P10: 35, P50: 50, P90: 60}},
		},
	}, {
		name: "node path never answered",
		pod:  []float64{150, 160},
		node: []float64{-1, -1},
		want: &Baseline{
			Clock: BaselineCapture, PodAt: "p0", NodeAt: "p3",
			Sent: 2, Received: 0, Pairs: 0,
			Pod: &Dist{P50: 150, P90: 160, P99: 160, Max: 160, Min: 150},
		},
	}, {
		// Each path answered, never the same sequence: the medians
		// compare, there is no pair to spread.
		name: "no pair answered on both",
		pod:  []float64{150, -1},
		node: []float64{-1, 100},
		want: &Baseline{
			Clock: BaselineCapture, PodAt: "p0", NodeAt: "p3",
			Sent: 2, Received: 1, Pairs: 0,
			Pod:      &Dist{P50: 150, P90: 150, P99: 150, Max: 150, Min: 150},
			Node:     &Dist{P50: 100, P90: 100, P99: 100, Max: 100, Min: 100},
			Overhead: &Overhead{P50: 50},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compareBaseline(pod(tt.pod...), node(tt.node...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %s\nwant %s", jsonOf(t, got), jsonOf(t, tt.want))
			}
		})
	}
}

func TestCompareBaselineNil(t *testing.T) {
	if got := compareBaseline(baselinePath{}, node(100)); got != nil {
		t.Errorf("got %+v without a pod result, want nil", got)
	}
	if got := compareBaseline(pod(100), baselinePath{}); got != nil {
		t.Errorf("got %+v without a baseline result, want nil", got)
	}
}

// TestCompareBaselineSendClocks: a probe without kernel TX stamps is timed
// from the send call, and the note says so per path.
func TestCompareBaselineSendClocks(t *testing.T) {
	p, n := pod(150, 160, 190), node(100, 110, 120)
	p.Probes.Probes[1].SchedAt = time.Time{} // no stamp at all: 10 us earlier, from SentAt
	got := compareBaseline(p, n)
	if want := (&Dist{P50: 170, P90: 190, P99: 190, Max: 190, Min: 150}); !reflect.DeepEqual(got.Pod, want) {
		t.Errorf("got pod %+v, want %+v (probe 1 from its send call: 170 us)", got.Pod, want)
	}
	if want := (&Dist{P50: 110, P90: 120, P99: 120, Max: 120, Min: 100}); !reflect.DeepEqual(got.Node, want) {
		t.Errorf("got node %+v, want %+v", got.Node, want)
	}
	want := []Note{{NoteSendClock, "1 of 3 answered probes of the pod path had no kernel TX stamp; its round trip starts at the send call (user space)"}}
	if !reflect.DeepEqual(got.Notes, want) {
		t.Errorf("got notes %q, want %q", got.Notes, want)
	}
}

// TestCompareBaselineMissedCapture: an answered probe whose reply the
// capture missed is left out of its path and of the pairs, and noted.
func TestCompareBaselineMissedCapture(t *testing.T) {
	p, n := pod(150, 160, 170), node(100, 110, 120)
	delete(n.Received, 1)
	got := compareBaseline(p, n)
	if got.Pairs != 2 || got.Received != 3 || !reflect.DeepEqual(got.Node, &Dist{P50: 100, P90: 120, P99: 120, Max: 120, Min: 100}) {
		t.Errorf("got pairs %d, received %d, node %+v; want 2, 3 and only probes 0 and 2", got.Pairs, got.Received, got.Node)
	}
	want := []Note{{NoteReceiveClock, "the capture at p3 missed the reply of 1 of 3 answered probes of the node path; it is left out"}}
	if !reflect.DeepEqual(got.Notes, want) {
		t.Errorf("got notes %q, want %q", got.Notes, want)
	}
}

// TestCompareBaselineUserFallback: when the node's replies crossed no
// capture point, both paths are timed to the read of the reply.
func TestCompareBaselineUserFallback(t *testing.T) {
	p, n := pod(150, 160, 170), node(100, 110, 120)
	n.Received, n.At = nil, ""
	got := compareBaseline(p, n)
	if got.Clock != BaselineUser || got.PodAt != "" || got.NodeAt != "" {
		t.Errorf("got clock %q at %q and %q, want %q and no points", got.Clock, got.PodAt, got.NodeAt, BaselineUser)
	}
	// Both read 30 us after the capture: the difference stays 50 us.
	if got.Pod.P50 != 190 || got.Node.P50 != 140 || got.Overhead.P50 != 50 || got.Pairs != 3 {
		t.Errorf("got pod p50 %v, node p50 %v, overhead %+v, %d pairs; want 190, 140, 50 over 3", got.Pod.P50, got.Node.P50, got.Overhead, got.Pairs)
	}
	if len(got.Notes) != 1 || got.Notes[0].Kind != NoteReceiveClock || !strings.Contains(got.Notes[0].Text, "the replies of the node path were captured at no point") {
		t.Errorf("got notes %q, want one about the node's uncaptured replies", got.Notes)
	}
}

// TestAccumulatorSetsBaselineAside: the baseline source's packets at the
// node's points are counted apart, not as ignored, and change nothing but
// the baseline block, which the Result has finished.
func TestAccumulatorSetsBaselineAside(t *testing.T) {
	res, obs := run{n: 5, delays: designDelays()}.build()
	var node []capture.Observation // the baseline probes at vxlan and uplink, both ways
	for _, o := range obs {
		if o.Point == "p3" || o.Point == "p4" {
			pl, _ := probe.ParsePayload(o.Payload)
			pl.RunID = baselineRun
			o.Payload = pl.Marshal(56)
			node = append(node, o)
		}
	}
	foreign := obs[0]
	pl, _ := probe.ParsePayload(foreign.Payload)
	pl.RunID = 7
	foreign.Payload = pl.Marshal(56)

	nodeRes := &probe.Result{RunID: baselineRun, Probes: res.Probes}

	plain := accumulate(t, res, nil, obs)
	got := accumulate(t, res, nodeRes, append(append(append([]capture.Observation{}, obs...), node...), foreign))
	b := got.Baseline
	if b == nil {
		t.Fatal("got no baseline block")
	}
	if b.NetNS != hostNS || b.Observations != len(node) {
		t.Errorf("got baseline netns %q with %d observations, want %q with %d", b.NetNS, b.Observations, hostNS, len(node))
	}
	if got.Probes.Ignored != 1 {
		t.Errorf("got %d ignored, want 1: only the foreign run's packet", got.Probes.Ignored)
	}
	got.Probes.Ignored, got.Baseline = 0, nil
	if !reflect.DeepEqual(got, plain) {
		t.Errorf("baseline packets changed the result:\ngot  %s\nwant %s", jsonOf(t, got), jsonOf(t, plain))
	}

	// The node's replies end at p3 flannel.1, the reply step nearest to
	// its socket: the pod path adds flannel.1 -> cni0 -> veth -> eth0.
	if b.Clock != BaselineCapture || b.PodAt != "p0" || b.NodeAt != "p3" || b.Pairs != 5 {
		t.Errorf("got %s, want clock %s at p0 and p3, 5 pairs", jsonOf(t, b), BaselineCapture)
	}
	if want := (&Overhead{P50: 11.4, Pairs: &Spread{P10: 11.4, P50: 11.4, P90: 11.4}}); !reflect.DeepEqual(b.Overhead, want) {
		t.Errorf("got overhead %s, want %s (9.1 + 1.6 + 0.7 us)", jsonOf(t, b.Overhead), jsonOf(t, want))
	}
}

// TestAccumulatorBaselineRequestsOnly: baseline requests seen at the node's
// points, but none of their replies, end the node path at no capture point:
// both round trips fall back to the reads of the replies.
func TestAccumulatorBaselineRequestsOnly(t *testing.T) {
	res, obs := run{n: 3, delays: designDelays()}.build()
	all := slices.Clone(obs)
	for _, o := range obs {
		if (o.Point == "p3" || o.Point == "p4") && o.IsRequest() {
			pl, _ := probe.ParsePayload(o.Payload)
			pl.RunID = baselineRun
			o.Payload = pl.Marshal(56)
			all = append(all, o)
		}
	}
	b := accumulate(t, res, &probe.Result{RunID: baselineRun, Probes: res.Probes}, all).Baseline
	if b.Clock != BaselineUser || b.NodeAt != "" || b.Observations != 6 {
		t.Errorf("got clock %q at %q over %d observations, want %q at no point over 6", b.Clock, b.NodeAt, b.Observations, BaselineUser)
	}
}

// TestAccumulatorWithoutBaselineIgnores: without a baseline source, another
// run's packets are ignored as before.
func TestAccumulatorWithoutBaselineIgnores(t *testing.T) {
	res, obs := run{n: 3, delays: designDelays()}.build()
	o := obs[3]
	pl, _ := probe.ParsePayload(o.Payload)
	pl.RunID = baselineRun
	o.Payload = pl.Marshal(56)
	got := accumulate(t, res, nil, append(obs, o))
	if got.Probes.Ignored != 1 || got.Baseline != nil {
		t.Errorf("got %d ignored and baseline %+v, want 1 and none", got.Probes.Ignored, got.Baseline)
	}
}

// accumulate replays obs along flannelPath for the traced run res and,
// when node is not nil, the baseline run node, and returns the Result.
func accumulate(t *testing.T, res, node *probe.Result, obs []capture.Observation) *Result {
	t.Helper()
	probes := []*probe.Result{res}
	if node != nil {
		probes = append(probes, node)
	}
	r, err := replaySources(flannelPath(), &capture.Capture{Observations: obs}, probes...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRenderBaseline: the text block follows the RTT lines; the JSON has
// the fields of docs/report-format.md.
func TestRenderBaseline(t *testing.T) {
	r := run{n: 5, delays: designDelays()}.correlate(t)
	r.Baseline = compareBaseline(pod(150, -1, 170, 160, 155), node(100, 105, 110, -1, 120))
	r.Baseline.NetNS, r.Baseline.Observations = hostNS, 16
	var text bytes.Buffer
	if err := Render(&text, r, FormatText); err != nil {
		t.Fatal(err)
	}
	want := `baseline: the same probes from the node's netns net:[4026531840], interleaved; both round trips from the kernel send stamp to the capture of the reply (pod path at p0 eth0, node path at p3 flannel.1)
  p50 155.0 us, p90 170.0 us, p99 170.0 us, max 170.0 us pod path
  p50 105.0 us, p90 120.0 us, p99 120.0 us, max 120.0 us node path (4 of 5 answered)
  overhead: p50 50.0 us (pod p50 - node p50); per pair p10 35.0 us, p50 50.0 us, p90 60.0 us over 3 pairs measured on both paths
`
	out := text.String()
	if !strings.Contains(out, want) {
		t.Errorf("got text:\n%s\nwant it to contain:\n%s", out, want)
	}
	if strings.Index(out, "baseline:") < strings.Index(out, "clocks:") || strings.Index(out, "baseline:") > strings.Index(out, "points:") {
		t.Errorf("the baseline block is not between the RTT lines and the points:\n%s", out)
	}

	var js bytes.Buffer
	if err := Render(&js, r, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Baseline map[string]any `json:"baseline"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"netns", "clock", "pod_rx_point", "node_rx_point", "sent", "received", "pod_rtt_us", "node_rtt_us", "pairs", "overhead_us", "observations"} {
		if _, ok := doc.Baseline[k]; !ok {
			t.Errorf("JSON baseline lacks %q: %v", k, doc.Baseline)
		}
	}
	if got := doc.Baseline["overhead_us"].(map[string]any)["pairs"].(map[string]any)["p90"]; got != 60.0 {
		t.Errorf("got overhead_us.pairs.p90 %v, want 60", got)
	}
}

// TestRenderNoBaselineUnchanged: without a baseline neither format says
// anything about one (the golden files hold the rest).
func TestRenderNoBaselineUnchanged(t *testing.T) {
	r := run{n: 3, delays: designDelays()}.correlate(t)
	for _, f := range []Format{FormatText, FormatJSON} {
		var b bytes.Buffer
		if err := Render(&b, r, f); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "baseline") {
			t.Errorf("%v report mentions a baseline without one:\n%s", f, b.String())
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
