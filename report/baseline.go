package report

import (
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// Baseline clocks: what both round trips of a Baseline are measured with.
// Both start at the kernel's send stamp of the request
// (probe.Probe.KernelSentAt: SCHED as it enters the first device's queue),
// so neither includes its send call in user space.
const (
	// BaselineCapture: they end at the capture stamp of the reply at the
	// last capture point before the socket: the pod's interface for the pod
	// path, and for the node path the point of the pod path nearest to the
	// node's socket that its replies cross (the overlay device, else the
	// uplink). Neither includes the local delivery to the socket or the
	// reader's wake-up, whose jitter (tens of microseconds) is as large as
	// the overhead being measured.
	BaselineCapture = "kernel-send-to-capture"
	// BaselineUser: they end at the read of the reply, the fallback when
	// the node's replies crossed no capture point.
	BaselineUser = "kernel-send-to-user-receive"
)

// Baseline compares the pod path with the node's own (a hostNetwork pod's):
// the same probes sent to the same target from the node's netns, interleaved
// with the pod's. The difference of the two round trips is what the CNI adds
// on the node: veth, bridge, forwarding (iptables), encapsulation.
type Baseline struct {
	// NetNS is the netns the baseline probes were sent from, the node's
	// (the baseline ProbeSource's).
	NetNS string `json:"netns"`
	// Clock names the clocks of both round trips: BaselineCapture or
	// BaselineUser.
	Clock string `json:"clock"`
	// PodAt and NodeAt are the points whose capture stamps end the round
	// trips with BaselineCapture; empty with BaselineUser.
	PodAt  string `json:"pod_rx_point,omitempty"`
	NodeAt string `json:"node_rx_point,omitempty"`
	// Sent and Received count the baseline probes (the pod's are in
	// Result.Probes).
	Sent     int `json:"sent"`
	Received int `json:"received"`
	// Pod and Node are the round trips of the answered probes of each path,
	// both measured with Clock (with BaselineCapture, only those whose
	// reply was captured at PodAt or NodeAt). With BaselineCapture Pod is
	// rtt_us over those probes. Nil when no probe of the path was measured.
	Pod  *Dist `json:"pod_rtt_us,omitempty"`
	Node *Dist `json:"node_rtt_us,omitempty"`
	// Pairs counts the sequence numbers measured on both paths: pod probe i
	// and node probe i, sent about half an interval apart.
	Pairs int `json:"pairs"`
	// Overhead is the pod path minus the node path; nil unless both paths
	// had answered probes.
	Overhead *Overhead `json:"overhead_us,omitempty"`
	// Observations counts the packets of the baseline probes seen at the
	// pod path's capture points (the node's own probes cross the overlay
	// device and the uplink too): set aside, not counted in
	// probes.ignored.
	Observations int `json:"observations"`
	// Notes says where the comparison is weaker than it looks, one line
	// each.
	Notes []Note `json:"notes,omitempty"`
}

// Overhead is how much longer the pod path's round trip is than the
// node's, in microseconds.
type Overhead struct {
	// P50 is the pod path's p50 minus the node path's p50.
	P50 float64 `json:"p50"`
	// Pairs is the spread of the difference probe by probe: percentiles of
	// pod RTT minus node RTT over the pairs; nil when there is none.
	Pairs *Spread `json:"pairs,omitempty"`
}

// Spread is the 10th, 50th and 90th nearest-rank percentile of a set of
// differences in microseconds, rounded to 0.1; they may be negative.
type Spread struct {
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
}

// baselinePath is one side of compareBaseline: a run's probes and, by
// sequence number, the capture stamp of each reply at the point At.
type baselinePath struct {
	Probes   *probe.Result
	Received map[uint32]time.Time
	At       string
}

// compareBaseline compares the round trips of the pod's probes with those
// of the baseline probes sent from the node's netns; probes pair up by
// sequence number. The round trips end at the capture stamps (Received)
// when both paths have some, else at the reads of the replies on both. It
// returns nil when either probe result is nil.
func compareBaseline(pod, node baselinePath) *Baseline {
	if pod.Probes == nil || node.Probes == nil {
		return nil
	}
	b := &Baseline{Clock: BaselineCapture, PodAt: pod.At, NodeAt: node.At, Sent: len(node.Probes.Probes)}
	if pod.uncaptured() || node.uncaptured() {
		b.Clock, b.PodAt, b.NodeAt = BaselineUser, "", ""
		b.Notes = append(b.Notes, notef(NoteReceiveClock, "the replies of the %s path were captured at no point; both round trips end at the read of the reply (user space), with the sockets' wake-up jitter in both",
			uncaptured(pod, node)))
	}
	podRTT, podNotes := baselineRTTs("pod", pod, b.Clock)
	nodeRTT, nodeNotes := baselineRTTs("node", node, b.Clock)
	b.Received = answered(node.Probes)
	b.Pod, b.Node = dist(values(podRTT)), dist(values(nodeRTT))
	var diffs []time.Duration
	for seq, p := range podRTT {
		if n, ok := nodeRTT[seq]; ok {
			diffs = append(diffs, p-n)
		}
	}
	b.Pairs = len(diffs)
	if b.Pod != nil && b.Node != nil {
		b.Overhead = &Overhead{P50: round(b.Pod.P50-b.Node.P50, 10), Pairs: spread(diffs)}
	}
	b.Notes = append(append(b.Notes, podNotes...), nodeNotes...)
	return b
}

// uncaptured reports whether some probes of the path were answered and
// none of their replies was captured.
func (p baselinePath) uncaptured() bool {
	return len(p.Received) == 0 && answered(p.Probes) > 0
}

// uncaptured names the paths whose replies were never captured.
func uncaptured(pod, node baselinePath) string {
	switch {
	case pod.uncaptured() && node.uncaptured():
		return "pod and the node"
	case pod.uncaptured():
		return "pod"
	}
	return "node"
}

// answered counts the answered probes of r, one per sequence.
func answered(r *probe.Result) int {
	seen := map[uint32]bool{}
	for _, p := range r.Probes {
		if p.Answered() {
			seen[p.Seq] = true
		}
	}
	return len(seen)
}

// baselineRTTs returns the round trip of every answered probe of the path
// by sequence number (the first probe of a sequence sent twice), measured
// with clock, and notes on the probes left out or timed from the send call.
func baselineRTTs(name string, path baselinePath, clock string) (map[uint32]time.Duration, []Note) {
	rtts := make(map[uint32]time.Duration, len(path.Probes.Probes))
	seen := make(map[uint32]bool, len(path.Probes.Probes))
	user, missed, n := 0, 0, 0
	for _, p := range path.Probes.Probes {
		if seen[p.Seq] || !p.Answered() {
			seen[p.Seq] = true
			continue
		}
		seen[p.Seq] = true
		n++
		rx := p.ReceivedAt
		if clock == BaselineCapture {
			var ok bool
			if rx, ok = path.Received[p.Seq]; !ok {
				missed++
				continue
			}
		}
		sent, sclock := p.KernelSentAt()
		if sclock == probe.ClockUser {
			user++
		}
		rtts[p.Seq] = rx.Sub(sent)
	}
	var notes []Note
	if missed > 0 {
		notes = append(notes, notef(NoteReceiveClock, "the capture at %s missed the reply of %d of %d answered probes of the %s path; %s left out",
			path.At, missed, n, name, plural(missed, "it is", "they are")))
	}
	if user > 0 {
		notes = append(notes, notef(NoteSendClock, "%d of %d answered probes of the %s path had no kernel TX stamp; %s round trip starts at the send call (user space)",
			user, n, name, plural(user, "its", "their")))
	}
	return rtts, notes
}

// values returns the durations of m; their order does not matter to dist.
func values(m map[uint32]time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	return out
}

// spread returns the p10, p50 and p90 of ds, or nil when ds is empty.
func spread(ds []time.Duration) *Spread {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return &Spread{P10: micros(rank(s, 10)), P50: micros(rank(s, 50)), P90: micros(rank(s, 90))}
}

// sourceRecord is what a run recorded of one source besides the traced
// one: what the report knows of it, its probe result, and what arrived of
// its probes, by step of the traced path's timeline.
type sourceRecord struct {
	src     ProbeSource
	probes  *probe.Result
	arrived *arrivals
	steps   []step
}

// baselineOf compares the traced source's probes, pod, whose report is r,
// with the baseline source's. The pod path's round trips end at the capture
// stamps on the pod's interface; the node path's at the reply step nearest
// to the node's socket where the baseline replies were captured.
func baselineOf(r *Result, pod *probe.Result, node sourceRecord) *Baseline {
	podPath := baselinePath{Probes: pod, Received: map[uint32]time.Time{}}
	for _, p := range r.Timelines {
		if p.Answered && p.ReceiveClock == RTTCapture {
			podPath.Received[p.Seq] = p.Received
		}
	}
	if len(r.Points) > 0 {
		podPath.At = r.Points[0].ID
	}
	nodePath := baselinePath{Probes: node.probes}
	nodePath.Received, nodePath.At = nodeReplies(node.arrived, node.steps)
	b := compareBaseline(podPath, nodePath)
	b.NetNS, b.Observations = node.src.NetNS, node.arrived.obs
	return b
}

// nodeReplies returns the capture stamps of a source's replies by sequence
// at the reply step nearest to the socket (the last in timeline order) where
// any was seen, and that step's point ID; nil and "" when none was seen.
func nodeReplies(in *arrivals, steps []step) (map[uint32]time.Time, string) {
	last := -1
	in.eachSeen(func(_ uint32, s *seen) {
		for i := len(s.at) - 1; i > last && steps[i].reply; i-- {
			if s.at[i].ok {
				last = i
				break
			}
		}
	})
	if last < 0 {
		return nil, ""
	}
	rx := map[uint32]time.Time{}
	in.eachSeen(func(seq uint32, s *seen) {
		if s.at[last].ok {
			rx[seq] = s.at[last].time()
		}
	})
	return rx, steps[last].point.ID
}
