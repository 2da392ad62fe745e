package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// StampsVersion is the version of the stamps record (Stamps): what `trace
// --for-merge` adds to its JSON report and what `listen` writes. Fields are
// only ever added to it.
const StampsVersion = 1

// Roles of a stamps record.
const (
	RoleTrace  = "trace"  // the source node: the probes' own run, its path in request order
	RoleListen = "listen" // a target node: every run that reached its pod, its path toward the pod
)

// ListenKind is the "kind" of a file `cnitrace listen` writes.
const ListenKind = "cnitrace-listen"

// MaxStampProbes bounds the probes a Recorder keeps, over all runs: later
// probes are counted in Stamps.Overflow and not kept (about 400 bytes of
// indented JSON each).
const MaxStampProbes = 100_000

// Stamps is a stamps record: the kernel capture stamps of every probe seen
// on one node, step by step, in that node's clock. It is what merge needs
// of a node, and the same whether the node sent the probes (RoleTrace) or
// only saw them pass (RoleListen).
type Stamps struct {
	Kind    string `json:"kind,omitempty"` // ListenKind in a listen file
	Version int    `json:"stamps_version"`
	Role    string `json:"role"`
	// Node is the node's host name, as the command that recorded it saw
	// it; "" when unknown.
	Node string         `json:"node,omitempty"`
	Path *topology.Path `json:"path"`
	// Steps are the crossings a probe makes on this node, in the order it
	// makes them: its request's, then its reply's. For RoleListen the
	// request enters by the path's last point (the uplink) and ends at its
	// first (the pod's interface).
	Steps []StampStep `json:"steps"`
	// Start and End are when the capture started and stopped, in the
	// node's clock: a probe sent outside them was not missed by it.
	Start time.Time  `json:"start"`
	End   time.Time  `json:"end"`
	Runs  []StampRun `json:"runs"`
	// Overflow counts the probes beyond MaxStampProbes that were not kept.
	Overflow int `json:"overflow,omitempty"`
	// Untokened counts TCP probe answers (SYN-ACKs, RSTs), which carry no
	// token, that were tied to no SYN seen on the node: a record places
	// the others as their probe's replies.
	Untokened int `json:"untokened,omitempty"`
	// Captures are the capture's counters per point ID (listen's; a
	// trace's are in its report's points); a point missing had none.
	Captures map[string]PointCapture `json:"captures,omitempty"`
}

// StampStep is one crossing of a point.
type StampStep struct {
	Point string       `json:"point"` // a Path point's ID
	Dir   topology.Dir `json:"dir"`
	Reply bool         `json:"reply,omitempty"`
}

// StampRun is what was seen of one run, by its run id.
type StampRun struct {
	RunID  RunID        `json:"run_id"`
	Probes []ProbeStamp `json:"probes"` // by sequence
}

// ProbeStamp is one probe's stamps: At[i] is the kernel stamp, Unix ns,
// at Steps[i] (0: not seen there), and bit i of SKB says it was the skb's
// own stamp (capture.StampSKB: maybe inherited from the previous device).
// Dst is the request's destination at the node's last request step: the
// backend, after a DNAT.
type ProbeStamp struct {
	Seq uint32  `json:"seq"`
	At  []int64 `json:"at"`
	SKB uint64  `json:"skb,omitempty"`
	Dst string  `json:"dst,omitempty"`
}

// RunID is a run id as the JSON has it: 16 hex digits, a string (a
// JavaScript reader would round a 64-bit number).
type RunID uint64

func (id RunID) String() string { return fmt.Sprintf("%016x", uint64(id)) }

// MarshalJSON writes the id as a hex string.
func (id RunID) MarshalJSON() ([]byte, error) { return json.Marshal(id.String()) }

// UnmarshalJSON reads the id from a hex string.
func (id *RunID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode run id: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		return fmt.Errorf("decode run id %q: want 16 hex digits", s)
	}
	*id = RunID(v)
	return nil
}

// maxStampSteps is the most steps a record holds (ProbeStamp.SKB's bits).
const maxStampSteps = 64

// stampSteps are the crossings of path in probe order: toward says the
// probes' requests travel in the path's request direction (RoleTrace);
// otherwise they come in against it (RoleListen).
func stampSteps(path *topology.Path, toward bool) []StampStep {
	n := len(path.Points)
	steps := make([]StampStep, 0, 2*n)
	for k := range 2 * n {
		reply := k >= n
		i := k // the point index
		if reply {
			i = 2*n - 1 - k
		}
		if !toward {
			i = n - 1 - i
		}
		pt := path.Points[i]
		dir := pt.RequestDir
		if reply == toward { // the path's reply direction
			dir = dir.Reverse()
		}
		steps = append(steps, StampStep{Point: pt.ID, Dir: dir, Reply: reply})
	}
	return steps
}

// Recorder keeps the stamps of every probe seen on one node's path, for a
// stamps record: feed it the capture's observations (capture.Config.Sink =
// Add), then call Stamps. It is safe for concurrent use. It keeps the
// probes of every run but run id 0 (a warm-up probe), or only of runs
// when NewRecorder is given some.
type Recorder struct {
	role  string
	path  *topology.Path
	steps []StampStep
	index map[stepKey]int
	runs  []uint64 // nil: every run

	mu         sync.Mutex
	seen       map[probe.Token]*ProbeStamp
	overflow   int
	untokened  int // TCP answers given up on, tied to no SYN
	ties       *tcpTies
	tiedRuns   []uint64       // the runs tied, by the index ties knows them by (tiedProbe.src)
	tiedIndex  map[uint64]int // tiedRuns' indexes
	start, end time.Time
	captures   map[string]PointCapture
}

// NewRecorder returns a Recorder for path in role (RoleTrace: the probes
// go out along path; RoleListen: they come in along it, toward its
// source), keeping only runs, or every run when none are given.
func NewRecorder(path *topology.Path, role string, runs ...uint64) (*Recorder, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if role != RoleTrace && role != RoleListen {
		return nil, fmt.Errorf("stamps role %q: want %s or %s", role, RoleTrace, RoleListen)
	}
	if 2*len(path.Points) > maxStampSteps {
		return nil, fmt.Errorf("path of %d points: a stamps record holds at most %d", len(path.Points), maxStampSteps/2)
	}
	r := &Recorder{role: role, path: path, steps: stampSteps(path, role == RoleTrace), index: map[stepKey]int{}, runs: runs, seen: map[probe.Token]*ProbeStamp{},
		ties: newTCPTies(maxTiedProbes), tiedIndex: map[uint64]int{}}
	for i, s := range r.steps {
		r.index[stepKey{s.Point, s.Reply}] = i
	}
	return r, nil
}

// Window records when the capture started and stopped, in the node's
// clock.
func (r *Recorder) Window(start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start, r.end = start, end
}

// Captured records the capture's counters (capture.Capture.Stats), for
// the record's Captures: a probe missing at a point whose capture dropped
// packets may have passed it unseen.
func (r *Recorder) Captured(stats []capture.PointStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.captures = map[string]PointCapture{}
	for _, st := range stats {
		r.captures[st.Point] = PointCapture{Packets: st.Packets, Drops: st.Drops, Freezes: st.Freezes, Undecodable: st.Undecodable}
	}
}

// Add records one observation: the earliest stamp of each probe at each
// step. Observations without a token, of another run, or crossing a
// point the way no step does are left out. A TCP probe's answer (SYN-ACK
// or RST) carries no token: it is tied to the SYN seen at its point, as
// the trace's report ties it (tcpTies), and recorded as that probe's
// reply; one tied to no SYN is counted in Stamps.Untokened.
func (r *Recorder) Add(o capture.Observation) {
	if isTCPAnswer(o) {
		r.mu.Lock()
		defer r.mu.Unlock()
		t, ok := r.ties.reply(o)
		if !ok { // its SYN may be seen at another point, whose ring is read later
			r.untokened += r.ties.hold(o)
			return
		}
		r.stamp(o, probe.Token{RunID: r.tiedRuns[t.src], Seq: t.seq}, true)
		return
	}
	tok, reply, ok := r.placeObs(o)
	if !ok || tok.RunID == 0 || (r.runs != nil && !slices.Contains(r.runs, tok.RunID)) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if o.Proto == capture.ProtoTCP { // a SYN: tie it, and place the answers seen before it
		for _, answer := range r.ties.request(o, r.tied(tok)) {
			r.stamp(answer, tok, true)
		}
	}
	r.stamp(o, tok, reply)
}

// isTCPAnswer says whether o is a TCP probe's answer: a SYN-ACK or an
// RST-ACK.
func isTCPAnswer(o capture.Observation) bool {
	return o.Proto == capture.ProtoTCP && o.TCPFlags&capture.TCPFlagACK != 0 && o.TCPFlags&(capture.TCPFlagSYN|capture.TCPFlagRST) != 0
}

// tied is tok as tcpTies knows a probe: its run's index among the runs
// seen, as the source, and its sequence. The caller holds the lock.
func (r *Recorder) tied(tok probe.Token) tiedProbe {
	i, ok := r.tiedIndex[tok.RunID]
	if !ok {
		i = len(r.tiedRuns)
		r.tiedRuns = append(r.tiedRuns, tok.RunID)
		r.tiedIndex[tok.RunID] = i
	}
	return tiedProbe{src: i, seq: tok.Seq}
}

// stamp records o as probe tok's crossing of its point, a reply's or a
// request's. The caller holds the lock.
func (r *Recorder) stamp(o capture.Observation, tok probe.Token, reply bool) {
	i, ok := r.index[stepKey{o.Point, reply}]
	if !ok || r.steps[i].Dir != o.Dir {
		return
	}
	p := r.seen[tok]
	if p == nil {
		if len(r.seen) >= MaxStampProbes {
			r.overflow++
			return
		}
		p = &ProbeStamp{Seq: tok.Seq, At: make([]int64, len(r.steps))}
		r.seen[tok] = p
	}
	// The earliest stamp counts, as in a trace's timeline (earliest).
	bit := uint64(1) << i
	s := earliest(sighting{ns: p.At[i], ok: p.At[i] != 0, skb: p.SKB&bit != 0}, o)
	p.At[i] = s.ns
	p.SKB &^= bit
	if s.skb {
		p.SKB |= bit
	}
	if !reply && r.lastRequest(i) && o.Dst.IsValid() {
		p.Dst = o.Dst.String()
	}
}

// Seen returns how many probes, and of how many runs, were recorded so
// far.
func (r *Recorder) Seen() (probes, runs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := map[uint64]bool{}
	for tok := range r.seen {
		ids[tok.RunID] = true
	}
	return len(r.seen), len(ids)
}

// lastRequest reports whether step i is the last request step.
func (r *Recorder) lastRequest(i int) bool { return i == len(r.steps)/2-1 }

// placeObs reads an observation's token and whether it is a reply, as
// the trace's report does (markOf): of ICMP echoes, UDP datagrams, DNS
// messages, ICMP errors quoting a probe and TCP SYNs, the packets that
// carry one. TCP answers are Add's.
func (r *Recorder) placeObs(o capture.Observation) (probe.Token, bool, bool) {
	tok, kind := markOf(o)
	switch kind {
	case markRequest:
		return tok, false, true
	case markReply:
		return tok, true, true
	case markEcho:
		// A UDP echo comes back as it went: the direction tells.
		i, ok := r.index[stepKey{o.Point, false}]
		return tok, !ok || r.steps[i].Dir != o.Dir, true
	}
	return probe.Token{}, false, false
}

// Stamps returns the record of what was added, runs in run id order and
// probes in sequence order, for node (the host name, "" if unknown).
func (r *Recorder) Stamps(node string) *Stamps {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Stamps{Version: StampsVersion, Role: r.role, Node: node, Path: r.path, Steps: slices.Clone(r.steps),
		Start: r.start, End: r.end, Overflow: r.overflow, Untokened: r.untokened + r.ties.waiting(), Runs: []StampRun{}, Captures: r.captures}
	if r.role == RoleListen {
		s.Kind = ListenKind
	}
	byRun := map[uint64][]ProbeStamp{}
	for tok, p := range r.seen {
		byRun[tok.RunID] = append(byRun[tok.RunID], *p)
	}
	for id, ps := range byRun {
		slices.SortFunc(ps, func(a, b ProbeStamp) int { return cmp.Compare(a.Seq, b.Seq) })
		s.Runs = append(s.Runs, StampRun{RunID: RunID(id), Probes: ps})
	}
	slices.SortFunc(s.Runs, func(a, b StampRun) int { return cmp.Compare(a.RunID, b.RunID) })
	return s
}
