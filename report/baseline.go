package report

import (
	"fmt"
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// BaselineClock names the clocks both baseline round trips are measured
// with: from the kernel's send stamp of the request (probe.Probe.KernelSentAt)
// to the user-space time the probe socket read the reply.
//
// The receive end is user space on both paths because the node's probe
// socket has no capture point after its last device: its replies are seen
// on the uplink and the overlay device, then delivered to the socket
// unseen. Using the same receive clock on the pod path (rather than the
// capture stamp on the pod's interface, as rtt_us does) keeps both round
// trips over the same span, socket to socket, so the socket's receive path
// and the reader's scheduling are in both and cancel in the difference.
const BaselineClock = "kernel-send-to-user-receive"

// Baseline compares the pod path with the node's own (a hostNetwork pod's):
// the same probes sent to the same target from the node's netns, interleaved
// with the pod's. The difference of the two round trips is what the CNI adds
// on the node: veth, bridge, forwarding (iptables), encapsulation.
type Baseline struct {
	// NetNS is the netns the baseline probes were sent from, the node's;
	// the caller sets it.
	NetNS string `json:"netns"`
	// Clock names the clocks of both round trips (BaselineClock).
	Clock string `json:"clock"`
	// Sent and Received count the baseline probes (the pod's are in
	// Result.Probes).
	Sent     int `json:"sent"`
	Received int `json:"received"`
	// Pod and Node are the round trips of the answered probes of each path,
	// both measured with Clock. Pod is not rtt_us: that one ends at the
	// capture stamp on the pod's interface. Nil when no probe of the path
	// was answered.
	Pod  *Dist `json:"pod_rtt_us,omitempty"`
	Node *Dist `json:"node_rtt_us,omitempty"`
	// Pairs counts the sequence numbers answered on both paths: pod probe i
	// and node probe i, sent half an interval apart.
	Pairs int `json:"pairs"`
	// Overhead is the pod path minus the node path; nil unless both paths
	// had answered probes.
	Overhead *Overhead `json:"overhead_us,omitempty"`
	// Observations counts the packets of the baseline probes seen at the
	// pod path's capture points (the node's own probes cross the overlay
	// device and the uplink too): set aside, not counted in
	// probes.ignored. The caller sets it (Accumulator.BaselineObservations).
	Observations int `json:"observations"`
	// Notes says where the comparison is weaker than it looks, one line
	// each.
	Notes []string `json:"notes,omitempty"`
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

// CompareBaseline compares the round trips of the pod's probes with those
// of the baseline probes sent from the node's netns; probes pair up by
// sequence number. It returns nil when either result is nil.
func CompareBaseline(pod, node *probe.Result) *Baseline {
	if pod == nil || node == nil {
		return nil
	}
	podRTT, podUser := baselineRTTs(pod)
	nodeRTT, nodeUser := baselineRTTs(node)
	b := &Baseline{Clock: BaselineClock, Sent: len(node.Probes), Received: len(nodeRTT)}
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
	b.Notes = baselineNotes(podUser, len(podRTT), nodeUser, len(nodeRTT))
	return b
}

// baselineRTTs returns the round trip of every answered probe of r by
// sequence number (the first probe of a sequence sent twice), and how many
// of them had no kernel send stamp.
func baselineRTTs(r *probe.Result) (map[uint32]time.Duration, int) {
	rtts := make(map[uint32]time.Duration, len(r.Probes))
	seen := make(map[uint32]bool, len(r.Probes))
	user := 0
	for _, p := range r.Probes {
		if seen[p.Seq] {
			continue
		}
		seen[p.Seq] = true
		if !p.Answered() {
			continue
		}
		sent, clock := p.KernelSentAt()
		if clock == probe.ClockUser {
			user++
		}
		rtts[p.Seq] = p.ReceivedAt.Sub(sent)
	}
	return rtts, user
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

// baselineNotes says which answered probes fell back to the send call for
// their send time: their RTT includes that path's send path in user space.
func baselineNotes(podUser, podAnswered, nodeUser, nodeAnswered int) []string {
	var notes []string
	for _, p := range []struct {
		name       string
		user, answ int
	}{{"pod", podUser, podAnswered}, {"node", nodeUser, nodeAnswered}} {
		if p.user > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d of %d answered probes of the %s path had no kernel TX stamp; %s RTT starts at the send call (user space)",
				NoteSendClock, p.user, p.answ, p.name, plural(p.user, "its", "their")))
		}
	}
	return notes
}
