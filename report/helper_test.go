package report

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

const (
	testRun  = 0x1122334455667788
	hostNS   = "net:[4026531840]"
	podNS    = "net:[4026532301]"
	interval = 10 * time.Millisecond
)

// Segments of flannelPath, in timeline order.
const (
	segEgress      = iota // p0 eth0 tx -> p1 veth rx
	segVethBridge         // p1 veth rx -> p2 cni0 rx
	segBridgeVXLAN        // p2 cni0 rx -> p3 flannel.1 tx
	segVXLANUplink        // p3 flannel.1 tx -> p4 eth0 tx
	segNetwork            // p4 eth0 tx -> p4 eth0 rx
	segUplinkVXLAN        // p4 eth0 rx -> p3 flannel.1 rx
	segVXLANBridge        // p3 flannel.1 rx -> p2 cni0 tx
	segBridgeVeth         // p2 cni0 tx -> p1 veth tx
	segIngress            // p1 veth tx -> p0 eth0 rx
	numSegs
)

// flannelPath is a pod behind a bridge and a VXLAN device, as flannel sets
// it up: p0 pod(tx) p1 veth(rx) p2 bridge(rx) p3 vxlan(tx) p4 uplink(tx).
func flannelPath() *topology.Path {
	return &topology.Path{
		Target: netip.MustParseAddr("10.244.2.2"),
		Source: topology.Source{NetNS: podNS, Interface: "eth0", Addr: netip.MustParseAddr("10.244.1.2")},
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", Ifindex: 2, NetNS: podNS, Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "veth3f2a9c1d", Ifindex: 7, NetNS: hostNS, Kind: topology.KindVeth, RequestDir: topology.RX},
			{ID: "p2", Interface: "cni0", Ifindex: 5, NetNS: hostNS, Kind: topology.KindBridge, RequestDir: topology.RX},
			{ID: "p3", Interface: "flannel.1", Ifindex: 4, NetNS: hostNS, Kind: topology.KindVXLAN, RequestDir: topology.TX, TunnelPort: 8472},
			{ID: "p4", Interface: "eth0", Ifindex: 2, NetNS: hostNS, Kind: topology.KindUplink, RequestDir: topology.TX},
		},
	}
}

// designDelays are the per-segment times measured on a real node
// (design.md, kernel fact 1), in microseconds.
func designDelays() []time.Duration {
	return us(5.4, 3.1, 25.8, 13.2, 65, 2.2, 9.1, 1.6, 0.7)
}

func us(vs ...float64) []time.Duration {
	ds := make([]time.Duration, len(vs))
	for i, v := range vs {
		ds[i] = time.Duration(v * float64(time.Microsecond))
	}
	return ds
}

// run describes a synthetic run of n probes: probe seq spends delays[s] plus
// jitter(seq, s) in segment s.
type run struct {
	path    *topology.Path
	n       int
	delays  []time.Duration
	jitter  func(seq, seg int) time.Duration
	inherit map[int]bool    // segments whose end carries its start's skb stamp
	lostIn  map[int]int     // seq -> segment in which the probe vanished
	missing map[[2]int]bool // {seq, step} the capture missed, though the probe passed
	refused map[int]error   // seq -> the error sendto returned; give it lostIn -1 too
	stats   []capture.PointStats
	// stamps gives a probe's kernel TX stamp (SCHED, which comes before
	// the pod interface's tap) as an offset from its request at that tap;
	// a zero offset means no stamp. Nil: no kernel stamps at all.
	stamps func(seq int) (sched time.Duration)
}

// testStep is the test's own idea of a timeline step.
type testStep struct {
	point topology.Point
	reply bool
	dir   topology.Dir
}

func stepsOf(p *topology.Path) []testStep {
	var s []testStep
	for _, pt := range p.Points {
		s = append(s, testStep{pt, false, pt.RequestDir})
	}
	for i := len(p.Points) - 1; i >= 0; i-- {
		s = append(s, testStep{p.Points[i], true, p.Points[i].RequestDir.Reverse()})
	}
	return s
}

// build returns the probe result and the observations of the run, in
// timeline order.
func (r run) build() (*probe.Result, []capture.Observation) {
	path := r.path
	if path == nil {
		path = flannelPath()
	}
	res := &probe.Result{RunID: testRun, Target: path.Target, Size: 56}
	var obs []capture.Observation
	for seq := 0; seq < r.n; seq++ {
		p, o := r.probe(path, seq)
		res.Probes = append(res.Probes, p)
		obs = append(obs, o...)
	}
	return res, obs
}

// runStart is when probe 0 of a synthetic run reaches the pod's interface.
var runStart = time.Unix(1_800_000_000, 0)

// probe returns probe seq of the run and its observations, in timeline
// order.
func (r run) probe(path *topology.Path, seq int) (probe.Probe, []capture.Observation) {
	t := runStart.Add(time.Duration(seq) * interval)
	p := probe.Probe{Seq: uint32(seq), SentAt: t.Add(-20 * time.Microsecond)}
	if r.stamps != nil {
		p.SchedAt = stampAt(t, r.stamps(seq))
	}
	p.SendErr = r.refused[seq]
	lostIn, lost := r.lostIn[seq]
	var obs []capture.Observation
	for k, st := range stepsOf(path) {
		if k > 0 && !r.inherit[k-1] {
			t = t.Add(r.delays[k-1])
			if r.jitter != nil {
				t = t.Add(r.jitter(seq, k-1))
			}
		}
		if lost && k > lostIn {
			break
		}
		if !r.missing[[2]int{seq, k}] {
			obs = append(obs, observe(st, uint32(seq), p.SentAt, t))
		}
	}
	if !lost {
		p.ReceivedAt = t.Add(15 * time.Microsecond)
	}
	return p, obs
}

// stampAt is t plus a non-zero offset; a zero offset is no stamp.
func stampAt(t time.Time, d time.Duration) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return t.Add(d)
}

func observe(st testStep, seq uint32, sent, at time.Time) capture.Observation {
	typ := uint8(8)
	if st.reply {
		typ = 0
	}
	return capture.Observation{
		Point:    st.point.ID,
		At:       at,
		Stamp:    capture.StampSKB,
		Dir:      st.dir,
		ICMPType: typ,
		ICMPID:   0x4242,
		ICMPSeq:  uint16(seq),
		Payload:  probe.Payload{RunID: testRun, Seq: seq, SentAt: sent}.Marshal(56),
	}
}

// replay runs a recorded run through an Accumulator as a live run does,
// with the probes as the one traced source: every observation of the
// capture added (nil is an empty capture), then the Result with the
// capture's counters.
func replay(path *topology.Path, probes *probe.Result, capt *capture.Capture) (*Result, error) {
	return replaySources(path, capt, probes)
}

// replaySources is replay with a source per probe result: the first is the
// traced one, a second the baseline, sent from hostNS. A nil first result
// stands for a traced run of testRun that recorded nothing.
func replaySources(path *topology.Path, capt *capture.Capture, probes ...*probe.Result) (*Result, error) {
	sources := []ProbeSource{{RunID: testRun}}
	if probes[0] != nil {
		sources[0].RunID = probes[0].RunID
	}
	for _, p := range probes[1:] {
		sources = append(sources, ProbeSource{RunID: p.RunID, NetNS: hostNS})
	}
	acc, err := NewAccumulator(path, sources)
	if err != nil {
		return nil, err
	}
	if capt == nil {
		capt = &capture.Capture{}
	}
	for _, o := range capt.Observations {
		acc.Add(o)
	}
	return acc.Result(Recorded{Probes: probes, Stats: capt.Stats})
}

// correlate builds the run and replays it, failing the test on error.
func (r run) correlate(t *testing.T) *Result {
	t.Helper()
	path := r.path
	if path == nil {
		path = flannelPath()
	}
	res, obs := r.build()
	got, err := replay(path, res, &capture.Capture{Observations: obs, Stats: r.stats})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return got
}

// seqOf returns the probe sequence an observation carries.
func seqOf(o capture.Observation) uint32 {
	p, _ := probe.ParsePayload(o.Payload)
	return p.Seq
}
