package report

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

const (
	host2NS = "net:[4026532400]"
	pod2NS  = "net:[4026532401]"
)

// targetPath is node 2's path from its pod at addr toward node 1's pod, as
// listen discovers it.
func targetPath(addr string) *topology.Path {
	return &topology.Path{
		Target: netip.MustParseAddr("10.244.1.2"),
		Source: topology.Source{NetNS: pod2NS, Interface: "eth0", Addr: netip.MustParseAddr(addr)},
		Points: []topology.Point{
			{ID: "p0", Interface: "eth0", Ifindex: 2, NetNS: pod2NS, Kind: topology.KindPod, RequestDir: topology.TX},
			{ID: "p1", Interface: "veth9a8b7c6d", Ifindex: 8, NetNS: host2NS, Kind: topology.KindVeth, RequestDir: topology.RX},
			{ID: "p2", Interface: "cni0", Ifindex: 5, NetNS: host2NS, Kind: topology.KindBridge, RequestDir: topology.RX},
			{ID: "p3", Interface: "flannel.1", Ifindex: 4, NetNS: host2NS, Kind: topology.KindVXLAN, RequestDir: topology.TX, TunnelPort: 8472},
			{ID: "p4", Interface: "eth0", Ifindex: 2, NetNS: host2NS, Kind: topology.KindUplink, RequestDir: topology.TX},
		},
	}
}

// twoNodes is a synthetic run across two nodes: the true time a probe
// spends in each of the merged timeline's 19 segments, node 2's clock
// ahead of node 1's by offset plus drift (ns per s) since the first probe.
type twoNodes struct {
	n        int
	interval time.Duration
	segs     func(seq int) []time.Duration // per merged segment
	offset   time.Duration
	drift    float64
	// drop says a probe's step k (of the merged timeline) was not seen.
	drop func(seq, k int) bool
	// backend is the target pod of probe seq ("": 10.244.2.2).
	backend func(seq int) string
}

// baseSegs are a probe's times in the merged segments: node 1's request
// (4), the request wire, node 2's request (4), the target pod, node 2's
// reply (4), the reply wire, node 1's reply (4).
func baseSegs() []time.Duration {
	return us(5, 3, 25, 13, 40, 2, 9, 2, 1, 30, 5, 3, 20, 12, 45, 2, 9, 2, 1)
}

// record runs the scenario through a Recorder on each node and returns
// the source's report and the listen files by target pod address.
func (s twoNodes) record(t testing.TB, extra ...uint64) (*Result, map[string]*Stamps) {
	t.Helper()
	pa := flannelPath()
	ra, err := NewRecorder(pa, RoleTrace, testRun)
	if err != nil {
		t.Fatal(err)
	}
	listeners := map[string]*Recorder{}
	stepsA := stampSteps(pa, true)
	start := runStart
	for seq := range s.n {
		backend := "10.244.2.2"
		if s.backend != nil {
			backend = s.backend(seq)
		}
		rb := listeners[backend]
		if rb == nil {
			if rb, err = NewRecorder(targetPath(backend), RoleListen); err != nil {
				t.Fatal(err)
			}
			rb.Window(start.Add(-time.Second), start.Add(time.Duration(s.n)*s.interval+time.Second))
			listeners[backend] = rb
		}
		stepsB := stampSteps(targetPath(backend), false)
		var merged []struct {
			node int
			st   StampStep
		}
		for _, st := range stepsA[:5] {
			merged = append(merged, struct {
				node int
				st   StampStep
			}{0, st})
		}
		for _, st := range stepsB {
			merged = append(merged, struct {
				node int
				st   StampStep
			}{1, st})
		}
		for _, st := range stepsA[5:] {
			merged = append(merged, struct {
				node int
				st   StampStep
			}{0, st})
		}
		at := start.Add(time.Duration(seq) * s.interval)
		segs := s.segs(seq)
		for k, m := range merged {
			if k > 0 {
				at = at.Add(segs[k-1])
			}
			if s.drop != nil && s.drop(seq, k) {
				continue
			}
			o := capture.Observation{Point: m.st.Point, At: at, Stamp: capture.StampCopy, Dir: m.st.Dir, ICMPType: 8,
				Dst: netip.MustParseAddr(backend), Payload: probe.Payload{RunID: testRun, Seq: uint32(seq)}.Marshal(56)}
			if m.st.Reply {
				o.ICMPType, o.Dst = 0, netip.MustParseAddr("10.244.1.2")
			}
			if m.node == 0 {
				ra.Add(o)
				continue
			}
			off := float64(s.offset) + s.drift*at.Sub(start).Seconds()
			o.At = at.Add(time.Duration(off))
			rb.Add(o)
			for _, id := range extra { // other runs through the same node
				o.Payload = probe.Payload{RunID: id, Seq: uint32(seq)}.Marshal(56)
				rb.Add(o)
			}
		}
	}
	src := &Result{SchemaVersion: SchemaVersion, Target: "10.244.2.2", Probes: ProbeCounts{Sent: s.n, Received: s.n}, Stamps: ra.Stamps("node1")}
	out := map[string]*Stamps{}
	for addr, rb := range listeners {
		out[addr] = rb.Stamps("node2-" + addr)
	}
	return src, out
}

func mergeOne(t *testing.T, src *Result, l *Stamps) *Result {
	t.Helper()
	rs, err := Merge(src, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("got %d merged reports, want 1", len(rs))
	}
	return rs[0]
}

// Merged segments of baseSegs, by index.
const (
	mReqWire = 4
	mTarget  = 9
	mRepWire = 14
	mSegs    = 19
)

func TestMergeTwoNodes(t *testing.T) {
	const delay = 2 * time.Millisecond
	s := twoNodes{n: 240, interval: 20 * time.Millisecond, offset: time.Second, drift: 50_000, segs: func(seq int) []time.Duration {
		d := baseSegs()
		d[mReqWire] += time.Duration(seq%7) * time.Microsecond
		d[mRepWire] += time.Duration(seq%5) * time.Microsecond
		if seq%3 == 0 {
			d[mReqWire] += delay
		}
		return d
	}}
	src, ls := s.record(t)
	r := mergeOne(t, src, ls["10.244.2.2"])
	if len(r.Segments) != mSegs || len(r.Points) != 10 {
		t.Fatalf("got %d segments on %d points, want %d on 10", len(r.Segments), len(r.Points), mSegs)
	}
	wantClass := []string{"egress", "forwarding", "forwarding", "forwarding", "network", "forwarding", "forwarding", "forwarding", "ingress", "target",
		"egress", "forwarding", "forwarding", "forwarding", "network", "forwarding", "forwarding", "forwarding", "ingress"}
	base := baseSegs()
	for i, seg := range r.Segments {
		if seg.Class != wantClass[i] || seg.Seen != s.n || seg.Lost != 0 || seg.US == nil {
			t.Fatalf("segment %d %s->%s: class %s seen %d lost %d us %v; want %s, %d seen", i, seg.From, seg.To, seg.Class, seg.Seen, seg.Lost, seg.US, wantClass[i], s.n)
		}
		if i == mReqWire || i == mRepWire {
			continue
		}
		// On one node's clock: exact but for the drift's few ns.
		if got, want := seg.US.Min, float64(base[i].Microseconds()); math.Abs(got-want) > 0.2 {
			t.Errorf("segment %d %s->%s: min %.1f us, want %.1f", i, seg.From, seg.To, got, want)
		}
	}
	m := r.Merge
	bound := m.Clock.BoundUS
	if m.Matched != s.n || !m.Clock.DriftFitted || bound <= 0 || bound > 60 {
		t.Fatalf("matched %d, clock %+v", m.Matched, m.Clock)
	}
	if got := m.Clock.DriftPPM; math.Abs(got-50) > 10 {
		t.Errorf("drift %.2f ppm, want about 50", got)
	}
	// The request wire's p90 carries the delay of a third of the probes;
	// the reply's does not.
	if got, want := m.Request.P90, float64((40*time.Microsecond + delay).Microseconds()); math.Abs(got-want) > bound+10 {
		t.Errorf("request wire p90 %.1f us, want %.1f +/- %.1f", got, want, bound)
	}
	if got := m.Reply.P90; math.Abs(got-45) > bound+10 {
		t.Errorf("reply wire p90 %.1f us, want 45 +/- %.1f", got, bound)
	}
	if !strings.HasPrefix(m.Directions, "the request wire is slower") {
		t.Errorf("directions: %s", m.Directions)
	}
	if got, want := m.WireRTT.Min, 85.0; math.Abs(got-want) > 0.5 {
		t.Errorf("wire round trip min %.1f us, want %.1f", got, want)
	}
	if v := r.Verdict; v.Class != ClassNetwork || v.Direction != DirRequest {
		t.Errorf("verdict %+v, want the request wire", v)
	}
}

func TestMergeMatchesByTokenAcrossRuns(t *testing.T) {
	// Node 2's clock is an hour ahead: matching never looks at times. Its
	// file also holds two other runs, which merge drops and names.
	s := twoNodes{n: 20, interval: 10 * time.Millisecond, offset: time.Hour, segs: func(int) []time.Duration { return baseSegs() }}
	src, ls := s.record(t, 0xaaaa, 0xbbbb)
	l := ls["10.244.2.2"]
	if len(l.Runs) != 3 {
		t.Fatalf("listen file holds %d runs, want 3", len(l.Runs))
	}
	r := mergeOne(t, src, l)
	if r.Merge.Matched != s.n {
		t.Errorf("matched %d, want %d", r.Merge.Matched, s.n)
	}
	if got := r.Merge.Dropped; len(got) != 2 || got[0].RunID != 0xaaaa || got[1].RunID != 0xbbbb || got[0].Probes != s.n {
		t.Errorf("dropped %+v, want runs aaaa and bbbb of %d probes", got, s.n)
	}
	if got, want := r.Merge.Clock.OffsetUS, float64(time.Hour.Microseconds()); math.Abs(got-want) > r.Merge.Clock.BoundUS {
		t.Errorf("offset %.1f us, want %.1f", got, want)
	}
	// No run in common: an error that says so.
	other, _ := twoNodes{n: 5, interval: time.Millisecond, segs: func(int) []time.Duration { return baseSegs() }}.record(t)
	other.Stamps.Runs[0].RunID = 0xcccc
	if _, err := Merge(other, l); !errors.Is(err, ErrNotMergeable) || !strings.Contains(err.Error(), "none of the listen files") {
		t.Errorf("no common run: got %v", err)
	}
	peer := *src
	peerStamps := *src.Stamps
	peerPath := *src.Stamps.Path
	peerPath.Turnaround = topology.TurnPeer
	peerStamps.Path, peer.Stamps = &peerPath, &peerStamps
	if _, err := Merge(&peer, l); !errors.Is(err, ErrNotMergeable) || !strings.Contains(err.Error(), "own node") {
		t.Errorf("a same-node trace: got %v", err)
	}
	tcp := *src
	tcp.Proto = "tcp" // its answers are tied to their SYNs by the Recorders: a run like any other
	if _, err := Merge(&tcp, l); err != nil {
		t.Errorf("a TCP run: got %v", err)
	}
	if _, err := Merge(&Result{}, l); !errors.Is(err, ErrNotMergeable) || !strings.Contains(err.Error(), "--for-merge") {
		t.Errorf("no stamps: got %v", err)
	}
}

func TestMergeLossesAndDisagreements(t *testing.T) {
	// Probe 3 is lost on the request wire, 5 on the reply wire; node 2
	// never saw probe 7, which came back (its capture missed it), and node
	// 1 never saw probe 9, which node 2 did.
	s := twoNodes{n: 30, interval: 10 * time.Millisecond, offset: -time.Second, segs: func(int) []time.Duration { return baseSegs() },
		drop: func(seq, k int) bool {
			switch seq {
			case 3:
				return k > mReqWire
			case 5:
				return k > mRepWire
			case 7:
				return k > mReqWire && k <= mRepWire
			case 9:
				return k <= mReqWire || k > mRepWire
			}
			return false
		}}
	src, ls := s.record(t)
	r := mergeOne(t, src, ls["10.244.2.2"])
	for i, seg := range r.Segments {
		want := 0
		if i == mReqWire || i == mRepWire {
			want = 1
		}
		if seg.Lost != want {
			t.Errorf("segment %d %s->%s (%s %s): lost %d, want %d", i, seg.From, seg.To, seg.Direction, seg.Class, seg.Lost, want)
		}
	}
	want := map[string][]uint32{DisagreeUnseenAtTarget: {7}, DisagreeTargetOnly: {9}}
	if len(r.Merge.Disagreements) != len(want) {
		t.Errorf("disagreements %+v, want %v", r.Merge.Disagreements, want)
	}
	for _, d := range r.Merge.Disagreements {
		if w := want[d.Kind]; len(w) != 1 || d.Probes != 1 || d.Seqs[0] != w[0] {
			t.Errorf("disagreement %+v, want %v", d, w)
		}
	}
	if l := r.Verdict.Loss; l == nil || l.Class != ClassNetwork {
		t.Errorf("verdict loss %+v, want on a wire", l)
	}
}

func TestMergeListeners(t *testing.T) {
	// A Service with two backends on two nodes: each probe's far half
	// comes from its backend's listener.
	s := twoNodes{n: 40, interval: 10 * time.Millisecond, segs: func(int) []time.Duration { return baseSegs() },
		backend: func(seq int) string {
			if seq%4 == 0 {
				return "10.244.3.2"
			}
			return "10.244.2.2"
		}}
	src, ls := s.record(t)
	rs, err := Merge(src, ls["10.244.2.2"], ls["10.244.3.2"])
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("got %d reports, want 2", len(rs))
	}
	for i, want := range []int{30, 10} {
		m := rs[i].Merge
		if m.Probes != want || m.Matched != want || len(m.Disagreements) != 0 {
			t.Errorf("report %d (node %s): %d probes, %d matched, disagreements %+v; want %d", i, m.Nodes[1].ID, m.Probes, m.Matched, m.Disagreements, want)
		}
		if rs[i].Points[5].ID != m.Nodes[1].ID+"0" {
			t.Errorf("report %d: the target's first point is %s, want %s0", i, rs[i].Points[5].ID, m.Nodes[1].ID)
		}
	}
}

func TestMergeOutsideWindow(t *testing.T) {
	s := twoNodes{n: 40, interval: 10 * time.Millisecond, segs: func(int) []time.Duration { return baseSegs() },
		drop: func(seq, k int) bool { return seq >= 30 && k > mReqWire }}
	src, ls := s.record(t)
	l := ls["10.244.2.2"]
	l.End = runStart.Add(300 * time.Millisecond) // the listener stopped after probe 29
	r := mergeOne(t, src, l)
	if r.Merge.OutsideWindow != 10 || r.Merge.Probes != 30 {
		t.Errorf("outside window %d, probes %d; want 10 and 30", r.Merge.OutsideWindow, r.Merge.Probes)
	}
	for _, seg := range r.Segments {
		if seg.Lost != 0 {
			t.Errorf("segment %s->%s lost %d, want 0: the listener was not listening", seg.From, seg.To, seg.Lost)
		}
	}
}

func TestMergeRendersEveryFormat(t *testing.T) {
	s := twoNodes{n: 20, interval: 10 * time.Millisecond, segs: func(int) []time.Duration { return baseSegs() }}
	src, ls := s.record(t)
	r := mergeOne(t, src, ls["10.244.2.2"])
	for _, f := range Formats() {
		var b strings.Builder
		if err := Render(&b, r, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, want := range []string{"wire round trip", "clock offset", "directions"} {
			if f != FormatJSON && !strings.Contains(b.String(), want) {
				t.Errorf("%s report lacks %q", f, want)
			}
		}
		if f == FormatJSON {
			back, err := Decode(strings.NewReader(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			if back.Merge == nil || back.Merge.Matched != s.n {
				t.Errorf("decoded merge block %+v", back.Merge)
			}
		}
	}
}

func TestDecodeMergeInput(t *testing.T) {
	s := twoNodes{n: 3, interval: 10 * time.Millisecond, segs: func(int) []time.Duration { return baseSegs() }}
	src, ls := s.record(t)
	var b strings.Builder
	if err := EncodeStamps(&b, ls["10.244.2.2"]); err != nil {
		t.Fatal(err)
	}
	r, st, err := DecodeMergeInput(strings.NewReader(b.String()))
	if err != nil || r != nil || st == nil || st.Role != RoleListen || len(st.Runs) != 1 || len(st.Runs[0].Probes) != 3 {
		t.Fatalf("listen file: %v, %v, %+v", err, r, st)
	}
	if _, err := Merge(src, st); err != nil {
		t.Errorf("merge of the decoded listen file: %v", err)
	}
	b.Reset()
	if err := Render(&b, src, FormatJSON); err != nil {
		t.Fatal(err)
	}
	r, st, err = DecodeMergeInput(strings.NewReader(b.String()))
	if err != nil || st != nil || r == nil || r.Stamps == nil || r.Stamps.Runs[0].RunID != testRun {
		t.Fatalf("report: %v, %+v", err, st)
	}
	newer := `{"kind": "cnitrace-listen", "stamps_version": 2}`
	var se *SchemaError
	if _, _, err := DecodeMergeInput(strings.NewReader(newer)); !errors.As(err, &se) || !se.Newer() || se.Record != RecordListen || !strings.Contains(err.Error(), "stamps_version 2") {
		t.Errorf("a newer listen file: got %v", err)
	}
}

func TestRecorderPlaces(t *testing.T) {
	path := flannelPath()
	rec, err := NewRecorder(path, RoleTrace) // every run
	if err != nil {
		t.Fatal(err)
	}
	at := runStart
	tok := func(run uint64, seq uint32) []byte {
		return probe.Payload{RunID: run, Seq: seq}.Marshal(capture.TokenLen)
	}
	obs := []capture.Observation{
		// UDP echo: the request leaves the pod (p0 tx), the reply comes back as it went (p0 rx).
		{Point: "p0", Dir: topology.TX, Proto: capture.ProtoUDP, Token: tok(7, 1), At: at},
		{Point: "p0", Dir: topology.RX, Proto: capture.ProtoUDP, Token: tok(7, 1), At: at.Add(time.Millisecond)},
		// DNS: the answer is told by its QR bit.
		{Point: "p4", Dir: topology.RX, Proto: capture.ProtoUDP, DNS: true, DNSResponse: true, Token: tok(7, 2), At: at},
		// A port unreachable quoting probe 7/4 answers it, as the trace's report reads it.
		{Point: "p3", Dir: topology.RX, Proto: capture.ProtoUnreachable, ICMPType: 3, ICMPCode: 3, Token: tok(7, 4), At: at.Add(3)},
		// A TCP SYN is a request; its SYN-ACK has no token.
		{Point: "p4", Dir: topology.TX, Proto: capture.ProtoTCP, TCPFlags: capture.TCPFlagSYN, Token: tok(8, 1), At: at},
		{Point: "p4", Dir: topology.RX, Proto: capture.ProtoTCP, TCPFlags: capture.TCPFlagSYN | capture.TCPFlagACK, At: at},
		// An echo request crossing p4 the reply's way fits no step; run 0 is a warm-up.
		{Point: "p4", Dir: topology.RX, ICMPType: 8, Payload: probe.Payload{RunID: 7, Seq: 3}.Marshal(56), At: at},
		{Point: "p0", Dir: topology.TX, ICMPType: 8, Payload: probe.Payload{RunID: 0, Seq: 0}.Marshal(56), At: at},
		// The same step twice: the earliest counts, and a fresh stamp beats an skb one at the same time.
		{Point: "p1", Dir: topology.RX, ICMPType: 8, Stamp: capture.StampSKB, Payload: probe.Payload{RunID: 9, Seq: 0}.Marshal(56), At: at.Add(2)},
		{Point: "p1", Dir: topology.RX, ICMPType: 8, Stamp: capture.StampSKB, Payload: probe.Payload{RunID: 9, Seq: 0}.Marshal(56), At: at.Add(1)},
		{Point: "p1", Dir: topology.RX, ICMPType: 8, Stamp: capture.StampCopy, Payload: probe.Payload{RunID: 9, Seq: 0}.Marshal(56), At: at.Add(1)},
	}
	for _, o := range obs {
		rec.Add(o)
	}
	s := rec.Stamps("n1")
	if s.Untokened != 1 {
		t.Errorf("untokened %d, want 1", s.Untokened)
	}
	got := map[RunID]map[uint32]ProbeStamp{}
	for _, r := range s.Runs {
		got[r.RunID] = map[uint32]ProbeStamp{}
		for _, p := range r.Probes {
			got[r.RunID][p.Seq] = p
		}
	}
	if len(got) != 3 || len(got[7]) != 3 || len(got[8]) != 1 || len(got[9]) != 1 {
		t.Fatalf("runs %v, want 7 (seqs 1, 2, 4), 8 (1) and 9 (0)", got)
	}
	// Steps: 0-4 the request at p0..p4, 5-9 the reply at p4..p0.
	check := func(run RunID, seq uint32, step int, want time.Time) {
		t.Helper()
		if p := got[run][seq]; p.At[step] != want.UnixNano() {
			t.Errorf("run %d seq %d step %d: %d, want %d", run, seq, step, p.At[step], want.UnixNano())
		}
	}
	check(7, 1, 0, at)
	check(7, 1, 9, at.Add(time.Millisecond))
	check(7, 2, 5, at)
	check(7, 4, 6, at.Add(3)) // the reply at p3
	check(8, 1, 4, at)
	check(9, 0, 1, at.Add(1))
	if p := got[9][0]; p.SKB != 0 {
		t.Errorf("skb bits %b, want the fresh stamp's (none)", p.SKB)
	}
	only, _ := NewRecorder(path, RoleTrace, 8)
	for _, o := range obs {
		only.Add(o)
	}
	if s := only.Stamps(""); len(s.Runs) != 1 || s.Runs[0].RunID != 8 || s.Kind != "" {
		t.Errorf("a recorder of run 8 kept %+v", s.Runs)
	}
	// Listening, the requests come in by the uplink: the echo request at
	// p4 rx that fit no step of the trace is the first step.
	listen, _ := NewRecorder(path, RoleListen)
	for _, o := range obs {
		listen.Add(o)
	}
	s = listen.Stamps("n2")
	if s.Kind != ListenKind || s.Steps[0] != (StampStep{Point: "p4", Dir: topology.RX}) {
		t.Fatalf("listen record: kind %q, steps %v", s.Kind, s.Steps)
	}
	found := false
	for _, r := range s.Runs {
		for _, p := range r.Probes {
			found = found || (r.RunID == 7 && p.Seq == 3 && p.At[0] == at.UnixNano())
		}
	}
	if !found {
		t.Errorf("listen did not record run 7 seq 3 at its first step: %+v", s.Runs)
	}
	if _, err := NewRecorder(path, "both"); err == nil {
		t.Error("a bad role: no error")
	}
}

func TestMergeCaptureDrops(t *testing.T) {
	// Probe 3 vanished after node 2's uplink, whose capture dropped
	// packets at the next point: unknown, not lost.
	s := twoNodes{n: 10, interval: 10 * time.Millisecond, segs: func(int) []time.Duration { return baseSegs() },
		drop: func(seq, k int) bool { return seq == 3 && k > mReqWire+1 }}
	src, ls := s.record(t)
	l := ls["10.244.2.2"]
	l.Captures = map[string]PointCapture{"p3": {Packets: 40, Drops: 2}}
	r := mergeOne(t, src, l)
	seg := r.Segments[mReqWire+1] // b0 eth0 -> b1 flannel.1
	if seg.Lost != 0 || seg.Unknown != 1 {
		t.Errorf("segment %s->%s: lost %d unknown %d, want 0 and 1", seg.From, seg.To, seg.Lost, seg.Unknown)
	}
	if p := r.Points[6]; p.ID != "b1" || p.Capture == nil || p.Capture.Drops != 2 {
		t.Errorf("point %+v, want b1 with the listener's capture counters", p)
	}
}

func TestMergeVerdict(t *testing.T) {
	// Every probe 2 ms in node 2's pod: a standing delay, named by its
	// share of the median. A third of the probes 2 ms later on the reply
	// wire: named by the latency above the fastest probe.
	for _, tt := range []struct {
		name        string
		seg         int
		every       int
		class, base string
	}{
		{"standing", mTarget, 1, ClassTarget, BasisMedian},
		{"a third", mRepWire, 3, ClassNetwork, BasisExcess},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := twoNodes{n: 30, interval: 10 * time.Millisecond, segs: func(seq int) []time.Duration {
				d := baseSegs()
				d[mReqWire] += time.Duration(seq%4) * time.Microsecond // the probes differ a little
				if seq%tt.every == 0 {
					d[tt.seg] += 2 * time.Millisecond
				}
				return d
			}}
			src, ls := s.record(t)
			v := mergeOne(t, src, ls["10.244.2.2"]).Verdict
			if v.Class != tt.class || v.Basis != tt.base {
				t.Errorf("verdict %q (%s, %s), want %s by %s", v.Text, v.Class, v.Basis, tt.class, tt.base)
			}
		})
	}
	// The wire holds most of the round trip, its reply half the larger
	// median (two thirds of its probes 200 us slower), and a third of the
	// probes are 2 ms later on the request wire. How the standing part
	// splits between the halves is the offset's, within its bound, so the
	// reply's larger median is not a standing delay of its own: the
	// request's spread names the direction.
	t.Run("wire halves within the bound", func(t *testing.T) {
		s := twoNodes{n: 30, interval: 10 * time.Millisecond, segs: func(seq int) []time.Duration {
			d := baseSegs()
			d[mReqWire] += time.Millisecond
			d[mRepWire] += time.Millisecond
			if seq%3 != 0 {
				d[mRepWire] += 200 * time.Microsecond
			}
			if seq%3 == 0 {
				d[mReqWire] += 2 * time.Millisecond
			}
			return d
		}}
		src, ls := s.record(t)
		r := mergeOne(t, src, ls["10.244.2.2"])
		if m, ok := byMedian(r); !ok || m.Direction != DirReply || m.Share < standingShare {
			t.Fatalf("the scenario: the median rule alone picks %q (share %.2f), want the reply wire at %.2f or more", m.Text, m.Share, standingShare)
		}
		if v := r.Verdict; v.Class != ClassNetwork || v.Direction != DirRequest || v.Basis != BasisExcess {
			t.Errorf("verdict %q (%s %s, %s), want the request wire by the latency above the fastest probe (bound +/-%.1f us)", v.Text, v.Class, v.Direction, v.Basis, r.Merge.Clock.BoundUS)
		}
	})
}
