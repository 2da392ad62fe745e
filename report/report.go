// Package report turns what a run recorded (the node path, the probes sent and
// the packets captured at every point) into a Result: per-segment latency
// distributions, where probes were lost, and a one-line verdict. It renders a
// Result as text for terminals, as JSON (the contract, which Decode reads
// back), as Markdown for a ticket or as one self-contained HTML page, and a
// topology.Path the same four ways (RenderPath).
//
// The package is pure: it never reads the clock, touches a socket or a file,
// so the same recorded input always gives the same report. The rules it
// applies are documented in docs/report-format.md.
package report

import "time"

// SchemaVersion is the version of the JSON contract. Fields are only ever
// added to it, never renamed or removed.
const SchemaVersion = 1

// Segment directions.
const (
	DirRequest = "request"
	DirReply   = "reply"
)

// Segment classes. Classes are an open set: renderers print unknown ones as
// they are.
const (
	ClassEgress     = "egress"     // request direction, one end on the pod's interface
	ClassIngress    = "ingress"    // reply direction, one end on the pod's interface
	ClassForwarding = "forwarding" // between interfaces inside the node
	ClassNetwork    = "network"    // last request step to first reply step: beyond the node
	ClassPeer       = "peer"       // last request step to first reply step when the path ends at a pod on this node
	ClassNode       = "node"       // last request step to first reply step when the node itself answers: its own stack
)

// Verdict bases.
const (
	BasisExcess = "excess" // share of the latency above the fastest complete probe
	BasisMedian = "median" // share of the sum of the segments' medians
	BasisFloor  = "floor"  // a standing delay: share of the fastest probe's round trip above the reverse direction's floor
)

// RTT sources: where the receive times of rtt_us and rtt_ping_us came from.
// They are also the receive clocks of RTTClocks and ProbeTimeline.
const (
	// RTTCapture: the kernel's receive stamp on the pod's interface.
	RTTCapture = "capture"
	// RTTUser: the user-space time the probe socket read the reply, used
	// when the pod's interface missed the reply.
	RTTUser  = "user"
	RTTMixed = "mixed" // some of each
)

// Result is the correlated report of one run. It mirrors the JSON contract
// (schema_version 1) field by field.
type Result struct {
	SchemaVersion int    `json:"schema_version"`
	Target        string `json:"target"`
	// Translated is the address the node DNATs Target to (a Service's
	// backend), as discovery found it; empty when none.
	Translated string `json:"translated,omitempty"`
	// Proto and Port are what the probes were (probe.Proto's String:
	// "tcp" or "udp", and the target port); empty and 0 for ICMP echo, as
	// before TCP and UDP probes existed.
	Proto string `json:"proto,omitempty"`
	Port  int    `json:"port,omitempty"`
	// Measures says, one sentence each, what the round trip of a TCP or
	// UDP probe measures besides the path, and where its losses may not be
	// the path's; empty for ICMP.
	Measures []string    `json:"measures,omitempty"`
	Source   Source      `json:"source"`
	Probes   ProbeCounts `json:"probes"`
	// Replies counts the answered probes of a TCP or UDP run by what
	// answered them (probe.Reply's String: syn-ack, rst, udp-reply,
	// dns-reply, unreachable, echo-reply); nil for ICMP echo.
	Replies map[string]int `json:"replies,omitempty"`
	// ExactProbes is set, to the package's ExactProbes, when the run sent
	// more probes than that: the percentiles (of segments' us and the
	// rtt_* distributions) then come from sketches beyond them, within
	// SketchError; counts and maxima stay exact. Absent: every figure is
	// exact. See docs/report-format.md.
	ExactProbes int `json:"exact_probes,omitempty"`
	// Socket holds what cnitrace's own probe socket missed; nil when it
	// missed nothing.
	Socket *SocketStats `json:"probe_socket,omitempty"`
	// RTT is the round trip over answered probes from the kernel's send
	// stamp of the request (probe.Probe.KernelSentAt: SCHED, else the
	// user-space send time) to the kernel's receive stamp of the reply
	// on the pod's interface (else the user-space receive time). RTTClocks
	// counts which clocks were used; RTTSource says where the receive times
	// came from. Nil when no probe was answered.
	RTT       *Dist  `json:"rtt_us,omitempty"`
	RTTSource string `json:"rtt_source,omitempty"`
	// PingRTT is the round trip as ping measures it: from the user-space
	// send time to the same receive time as RTT. It is what rtt_us was before
	// kernel send stamps. Where RTT's send times are kernel stamps, PingRTT
	// minus RTT is the pod's send path from the send call to the device
	// queue.
	PingRTT *Dist `json:"rtt_ping_us,omitempty"`
	// RTTClocks counts, over the answered probes, the clock each end of
	// their RTT came from; nil when no probe was answered.
	RTTClocks *Clocks `json:"rtt_clocks,omitempty"`
	// RTTNotes says where RTT is weaker than it looks: user-space times used
	// as a fallback for kernel ones (NoteSendClock, NoteReceiveClock).
	RTTNotes []Note `json:"rtt_notes,omitempty"`
	// PathRTT is the round trip from the pod's interface out to the pod's
	// interface in, kernel stamps at both ends: what the segments add up to.
	// PingRTT minus PathRTT is the pod's own send path and socket.
	PathRTT *Dist `json:"rtt_path_us,omitempty"`
	// UserRTT is the round trip the probe socket saw, user-space times at
	// both ends, so it includes the pod's stack and Go's scheduling.
	UserRTT *Dist   `json:"rtt_user_us,omitempty"`
	Points  []Point `json:"points"`
	// Rewrites lists the addresses NAT changed between consecutive points,
	// in timeline order; empty when nothing was rewritten.
	Rewrites []Rewrite `json:"rewrites,omitempty"`
	// Backends says which destination each probe reached after a DNAT
	// (a Service's endpoints): nil when no probe's destination changed.
	Backends *Backends `json:"backends,omitempty"`
	Segments []Segment `json:"segments"` // in timeline order
	// Stack counts the unanswered probes lost outside every capture point,
	// in the source netns's own stack.
	Stack   StackLoss `json:"stack_loss"`
	Verdict Verdict   `json:"verdict"`
	// Baseline compares the pod path with the node's own (trace
	// --baseline); nil without a baseline source.
	Baseline *Baseline `json:"baseline,omitempty"`
	// Typical is one real probe seen at every step, the median by its path
	// round trip: what the HTML report's waterfall draws. Nil when no probe
	// was seen at every step.
	Typical *TypicalProbe `json:"typical_probe,omitempty"`
	// Incomplete says the run stopped early (Ctrl-C, Recorded.Interrupted):
	// the numbers then cover only what was recorded.
	Incomplete bool `json:"incomplete"`
	// Run says how the report was made: the command, the versions, the
	// node and the time; nil when the caller did not say (the package
	// never reads the clock or the system itself).
	Run *Run `json:"run,omitempty"`
	// Stamps is the run's stamps record (trace --for-merge): every probe's
	// capture stamps, what merge reads; nil otherwise.
	Stamps *Stamps `json:"stamps,omitempty"`
	// Merge is what a merge of two nodes' files adds (Merge): the wire
	// split in request and reply, the clock offset and its bound; nil in
	// a one-node report.
	Merge *Merged `json:"merge,omitempty"`
	// Timelines are the probes one by one, in sequence order: the first
	// ExactProbes of them. They are not part of the JSON contract (yet).
	Timelines []ProbeTimeline `json:"-"`
}

// Run is how a report was made, as the caller that ran the probes knows
// it: what a ticket needs to reproduce the run.
type Run struct {
	// Command is the command line as given, program name first.
	Command []string `json:"command"`
	// Version is cnitrace's version: its module version, and the VCS
	// revision it was built from when known.
	Version string `json:"version"`
	// Kernel is the node's kernel release (uname -r), Node its host name.
	Kernel string `json:"kernel"`
	Node   string `json:"node,omitempty"`
	// Started and Ended are when the probes started and the report was
	// made, UTC.
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// Clocks counts, per clock name, the probes whose send or receive time came
// from that clock. Send clocks are probe.ClockSched and probe.ClockUser;
// receive clocks are RTTCapture and RTTUser.
type Clocks struct {
	Send    map[string]int `json:"send"`
	Receive map[string]int `json:"receive"`
}

// ProbeTimeline is what was recorded of one probe. Times are
// CLOCK_REALTIME; zero where nothing was recorded.
type ProbeTimeline struct {
	Seq      uint32
	Answered bool // a reply was read by the probe socket
	// Sent is the send time the RTT is measured from and SendClock the clock
	// it came from (probe.Probe.KernelSentAt).
	Sent      time.Time
	SendClock string
	// Received is the receive time the RTT is measured to and ReceiveClock
	// where it came from (RTTCapture or RTTUser); zero and "" when not
	// answered.
	Received     time.Time
	ReceiveClock string
	// UserSent and UserReceived are the probe socket's user-space times.
	UserSent, UserReceived time.Time
	// First and Last are the capture stamps at the first step (the request
	// leaving the pod's interface) and the last (the reply reaching it);
	// zero where the capture missed it. The other steps' stamps are not
	// kept per probe: a long run would hold them all.
	First, Last time.Time
}

// RTT is Received minus Sent, the probe's contribution to rtt_us.
func (p ProbeTimeline) RTT() (time.Duration, bool) {
	return p.Received.Sub(p.Sent), p.Answered
}

// PingRTT is Received minus UserSent, the probe's contribution to
// rtt_ping_us.
func (p ProbeTimeline) PingRTT() (time.Duration, bool) {
	return p.Received.Sub(p.UserSent), p.Answered
}

// UserRTT is the round trip in user space, the probe's contribution to
// rtt_user_us.
func (p ProbeTimeline) UserRTT() (time.Duration, bool) {
	return p.UserReceived.Sub(p.UserSent), p.Answered
}

// PathRTT is the time between the capture stamps of the first and the last
// step, the probe's contribution to rtt_path_us.
func (p ProbeTimeline) PathRTT() (time.Duration, bool) {
	if p.First.IsZero() || p.Last.IsZero() {
		return 0, false
	}
	return p.Last.Sub(p.First), true
}

// Source is where the probes were sent from.
type Source struct {
	NetNS     string `json:"netns"`
	Interface string `json:"interface"`
	Addr      string `json:"addr"`
	// Pod (namespace/name) and SandboxID name the Kubernetes pod the
	// netns is of, when the caller found it through the runtime (--pod);
	// Correlate leaves them empty. HostNetwork says the pod shares the
	// node's netns: the trace is the node's own.
	Pod         string `json:"pod,omitempty"`
	SandboxID   string `json:"sandbox_id,omitempty"`
	HostNetwork bool   `json:"host_network,omitempty"`
}

// ProbeCounts counts the probes of the run and the observations that did not
// belong to it.
type ProbeCounts struct {
	Sent     int `json:"sent"`
	Received int `json:"received"` // answered, as the probe socket saw it
	// Ignored counts observations not used: foreign payloads, other runs,
	// unknown points, unexpected directions, sequences never sent.
	Ignored int `json:"ignored"`
	// Late counts unanswered probes whose reply reached the source
	// interface after the run had stopped waiting for it
	// (probe.Probe.Deadline): late, not lost.
	Late int `json:"late,omitempty"`
	// Dropped counts unanswered probes whose reply reached the source
	// interface in time but that cnitrace's own probe socket dropped (its
	// receive queue was full: probe_socket.drops) or read only after the
	// deadline: cnitrace's loss, not the path's, and not in stack_loss.
	Dropped int `json:"dropped,omitempty"`
}

// Backends are the destinations the probes' requests carried at the first
// point after a DNAT: where a Service sent each probe.
type Backends struct {
	// At is the point (an ID of points) where the translated destination
	// was first seen.
	At string `json:"at"`
	// Seen are the destinations, in address order, with how many probes
	// reached each; Other counts the probes to destinations beyond the
	// first 16.
	Seen  []Backend `json:"seen"`
	Other int       `json:"other,omitempty"`
}

// Backend is one destination after a DNAT and the probes that reached it.
type Backend struct {
	Addr   string `json:"addr"`
	Port   int    `json:"port,omitempty"` // TCP and UDP: the translated port
	Probes int    `json:"probes"`
}

// SocketStats are the counters of cnitrace's own probe socket
// (probe.Result).
type SocketStats struct {
	// Drops counts the packets its receive queue dropped because it was
	// full: this run's replies, or any other echo reply that reached the
	// socket in the source netns.
	Drops uint64 `json:"drops"`
	// LateReplies counts the replies it read after their probe's
	// deadline.
	LateReplies int `json:"late_replies"`
}

// Lost returns how many probes the path lost: those sent and not
// answered, except the late ones and those cnitrace dropped itself.
func (r *Result) Lost() int {
	return r.Probes.Sent - r.Probes.Received - r.Probes.Late - r.Probes.Dropped
}

// Point is one capture point of the path.
type Point struct {
	ID         string `json:"id"`
	Interface  string `json:"interface"`
	NetNS      string `json:"netns"`
	Ifindex    int    `json:"ifindex"`
	Kind       string `json:"kind"`
	RequestDir string `json:"request_dir"` // tx or rx; replies cross the other way
	// TunnelPort is the UDP port of an overlay device (VXLAN 8472, 4789;
	// Geneve 6081), as in topology.Point: the two share one schema.
	TunnelPort int `json:"tunnel_port,omitempty"`
	// Capture holds the counters of the point's capture handle; nil when the
	// capture reported none for it.
	Capture *PointCapture `json:"capture,omitempty"`
	// Request and Reply are the addresses the probes carried at the point;
	// nil when no probe was seen there in that direction.
	Request *Addrs `json:"request_addrs,omitempty"`
	Reply   *Addrs `json:"reply_addrs,omitempty"`
}

// PointCapture are the counters of one point's capture handle
// (capture.PointStats).
type PointCapture struct {
	Packets uint64 `json:"packets"` // accepted by the filter, dropped ones included
	Drops   uint64 `json:"drops"`   // lost because the ring was full
	Freezes uint64 `json:"freezes"` // times the kernel froze the full ring's queue
	// Undecodable counts packets the filter accepted that could not be
	// decoded.
	Undecodable int `json:"undecodable"`
}

// Dropped reports whether the capture may have missed packets at the point:
// it dropped some or its ring froze.
func (p Point) Dropped() bool {
	return p.Capture != nil && (p.Capture.Drops > 0 || p.Capture.Freezes > 0)
}

// Name renders the point as ifname@netns.
func (p Point) Name() string { return p.Interface + "@" + p.NetNS }

// Segment is the interval between two consecutive steps of a probe's
// timeline.
type Segment struct {
	From      string `json:"from"` // point IDs
	To        string `json:"to"`
	Direction string `json:"direction"` // DirRequest or DirReply
	Class     string `json:"class"`
	// Separable is false when at least half of the samples carry an RX stamp
	// inherited from the previous device: the segment cannot be measured on
	// its own and is merged into the next separable one.
	Separable bool `json:"separable"`
	Seen      int  `json:"seen"` // probes observed at both ends
	Lost      int  `json:"lost"` // probes last observed at From, never answered
	// Unknown counts probes last observed at From, never answered, and
	// missing at To while To's capture dropped packets: they may have passed
	// To unseen and vanished later, so they are not counted in Lost.
	Unknown int `json:"unknown"`
	// US is the time spent in the segment; nil when not separable or seen == 0.
	US *Dist `json:"us,omitempty"`
	// MergedFrom is the point where the measured span starts when preceding
	// non-separable segments were merged into this one.
	MergedFrom string `json:"merged_from,omitempty"`
	// Note says why the segment is not separable: the String of its first
	// note, of kind NoteNotSeparable, kept for compatibility.
	Note string `json:"note,omitempty"`
	// Notes says where the segment's numbers are weak, one each:
	// NoteNotSeparable first when it is not separable, then
	// NoteFewSamples and NoteCaptureDrops.
	Notes []Note `json:"notes,omitempty"`
}

// PointSocket stands for the probe socket in Loss.From and Loss.To: the end
// of the path that is not a capture point.
const PointSocket = "socket"

// StackLoss counts the unanswered probes lost in the source's own stack,
// between the probe socket and the first capture point.
type StackLoss struct {
	// Request counts probes sent but never seen at the first point: dropped
	// on the send path (netfilter OUTPUT, the qdisc of the source
	// interface).
	Request int `json:"request"`
	// Refused counts those of Request whose sendto the kernel refused
	// (probe.Refused: EPERM is a netfilter or BPF drop on output), and
	// RefusedError is the first refusal's error text.
	Refused      int    `json:"refused"`
	RefusedError string `json:"refused_error,omitempty"`
	// Reply counts probes whose reply reached the first point but never
	// the probe socket: dropped on the receive path (netfilter INPUT, a
	// full socket buffer).
	Reply int `json:"reply"`
	// Unknown counts probes never seen at the first point while its capture
	// dropped packets: they may have passed it unseen.
	Unknown int `json:"unknown"`
}

// Dist is a distribution in microseconds, rounded to 0.1, with nearest-rank
// percentiles.
type Dist struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	// Min is the fastest sample: a segment's floor, what every probe
	// took at least (exact, like Max, however many probes).
	Min float64 `json:"min"`
}

// Verdict names the segment that explains most of the latency, and the one
// with the most losses. Text is always set; the other fields are empty when
// nothing could be attributed.
type Verdict struct {
	Class     string  `json:"class,omitempty"`
	From      string  `json:"from,omitempty"`
	To        string  `json:"to,omitempty"`
	Direction string  `json:"direction,omitempty"`
	Share     float64 `json:"share,omitempty"` // 0..1, rounded to 0.01
	Basis     string  `json:"basis,omitempty"` // BasisExcess or BasisMedian
	Text      string  `json:"text"`
	Loss      *Loss   `json:"loss,omitempty"` // nil when no segment lost a probe
	// Unknown counts the unanswered probes that could not be located because
	// a capture dropped packets (the sum of segments[].unknown).
	Unknown int `json:"unknown,omitempty"`
	// Floor is the standing delay found, if any: a segment whose fastest
	// probe took far longer than the same points the other way (Basis is
	// BasisFloor when it explains more than the spread does).
	Floor *Floor `json:"floor,omitempty"`
}

// Floor is a standing delay: a segment every probe spent at least FloorUS
// in, against ReferenceUS for the same points crossed the other way, the
// difference at least half of the fastest probe's round trip. A queue that
// never drains (a shaper kept full) or a fixed delay shows so; jitter
// does not.
type Floor struct {
	From      string  `json:"from"` // the segment, as in segments
	To        string  `json:"to"`
	Direction string  `json:"direction"`
	Class     string  `json:"class"`
	FloorUS   float64 `json:"floor_us"` // the segment's minimum over the probes (its measured span's, when merged)
	// RefFrom, RefTo and RefDirection are the reference span: the same
	// points crossed the other way (extended to the next point when its
	// last stamp was inherited), and ReferenceUS its minimum.
	RefFrom      string  `json:"reference_from"`
	RefTo        string  `json:"reference_to"`
	RefDirection string  `json:"reference_direction"`
	ReferenceUS  float64 `json:"reference_us"`
	// Share is FloorUS minus ReferenceUS over the fastest probe's round
	// trip between the first point's captures, 0..1, rounded to 0.01.
	Share float64 `json:"share"`
}

// Loss names the segment with the most lost probes.
type Loss struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Direction string `json:"direction"`
	Class     string `json:"class"`
	Lost      int    `json:"lost"`
}

// point returns the point with the given ID, or a point holding only the ID.
func (r *Result) point(id string) Point {
	for _, p := range r.Points {
		if p.ID == id {
			return p
		}
	}
	return Point{ID: id}
}
