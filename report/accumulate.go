package report

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// ProbeSource is what the report needs to know of one source of probes:
// one socket's share of a run, with a run id of its own (probe.Source).
type ProbeSource struct {
	// RunID is the run id in the tokens of the source's probes
	// (probe.Config.RunID): non-zero, and distinct from every other
	// source's.
	RunID uint64
	// NetNS is the netns the source sends from, as topology.NetNS.ID has
	// it: net:[4026531840]. For the traced source it may be left empty
	// (it is the path's source netns); for the baseline it is
	// Baseline.NetNS.
	NetNS string
	// Proto and Port are what the source sends (probe.Config.Proto and
	// Port): the zero values are ICMP echo, as before TCP and UDP probes.
	// The traced source's are the report's (Result.Proto, Result.Port).
	Proto probe.Proto
	Port  int
}

// Recorded is what a run recorded besides the observations, which went to
// Add.
type Recorded struct {
	// Probes are the probe results of the sources, one each, in the order
	// NewAccumulator was given them (probe.RunSources returns them so).
	// Their counters (socket drops, late replies) go into the report; the
	// probes they hold, if any (a run without probe.Config.Sink), are
	// taken as if given to AddProbe.
	Probes []*probe.Result
	// Stats are the capture's per-point counters (capture.Capture.Stats):
	// they say where a missing probe may be the capture's fault.
	Stats []capture.PointStats
	// Interrupted says the run stopped early (Ctrl-C): the Result is
	// marked Incomplete.
	Interrupted bool
}

// Accumulator folds what a run records into the report as it arrives:
// feed it the observations from the capture (capture.Config.Sink = Add)
// and the finished probes from the prober (probe.Config.Sink calling
// AddProbe), then call Result. It is safe for concurrent use.
//
// Its memory is bounded whatever the length of the run: it keeps the
// timelines of the traced source's first ExactProbes probes whole (16
// bytes per probe and step, and the probe's record), and folds every
// later probe, once its packets are in (settle after it was answered or
// given up on, as the run's own times tell), into per-segment counters and
// sketches; at most MaxPending probes wait to be folded.
//
// It knows the run's probe sources by their run ids. Source 0 is the traced
// one (the pod): its probes make the timelines, segments and verdict. A
// source 1, if given, is the baseline (trace --baseline: the node's own
// path to the same target): its probes cross some of the same points, and
// their packets are set aside for Result.Baseline instead of being counted
// as ignored; the baseline compares the first ExactProbes of each.
type Accumulator struct {
	path    *topology.Path
	sources []ProbeSource
	ids     []string       // the points' IDs, in path order: stepOf finds a point's steps
	dirs    []topology.Dir // the crossing direction of every step
	steps   []step         // the timeline without capture counters, for folding

	mu      sync.Mutex
	arrived []arrivals  // per source, in sources' order
	addrs   []stepAddrs // per step, the addresses the traced probes carried there
	ignored int         // observations of no source, and the traced source's that fit no step
	ties    *tcpTies    // TCP SYNs waiting for their answers, per point
	stream              // the traced probes beyond ExactProbes
}

// arrivals is what arrived of one source's probes.
type arrivals struct {
	exact exactSeqs               // what arrived of the first ExactProbes sequences
	bySeq map[uint32]*seen        // observations kept of later sequences, by sequence
	recs  map[uint32]*probe.Probe // probe records kept of later sequences, by sequence
	spare spare                   // what later sequences folded left, for the next ones
	obs   int                     // observations carrying the source's token
	// sent and received count the records added, kept or folded.
	sent, received int
	replies        [probe.Unreachable + 1]int // the records added, by what answered them
	beyond         int                        // entries of bySeq from ExactProbes on
	folded         int64                      // the highest sequence folded, -1 for none
}

// seen is what arrived for one sequence number of a source.
type seen struct {
	at  []sighting // by step
	obs int        // observations placed, for the ignored count of unsent sequences
}

// maxSources is the number of sources the report knows what to do with: the
// traced one and a baseline.
const maxSources = 2

// NewAccumulator returns an Accumulator for the probes of sources along
// path; sources[0] is the traced source, sources[1], if any, the baseline.
// It returns an error for a path it cannot use (nil, without points, or
// with duplicate point IDs) and for sources it cannot tell apart or place:
// none or more than two, a run id that is zero or repeated, a baseline
// without its netns, a traced source whose netns is not the path's.
func NewAccumulator(path *topology.Path, sources []ProbeSource) (*Accumulator, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if err := validateSources(path, sources); err != nil {
		return nil, err
	}
	a := &Accumulator{
		path:    path,
		sources: slices.Clone(sources),
		steps:   buildSteps(path, make([]Point, len(path.Points))),
		arrived: make([]arrivals, len(sources)),
		ties:    newTCPTies(maxTiedProbes),
	}
	for i := range a.arrived {
		a.arrived[i] = arrivals{exact: exactSeqs{steps: len(a.steps)}, bySeq: map[uint32]*seen{}, recs: map[uint32]*probe.Probe{}, folded: -1}
	}
	for _, p := range path.Points {
		a.ids = append(a.ids, p.ID)
	}
	for _, s := range a.steps {
		a.dirs = append(a.dirs, s.dir)
		a.addrs = append(a.addrs, stepAddrs{})
	}
	return a, nil
}

// stepOf returns the step at which a probe's request (reply false) or its
// reply crosses point, as buildSteps lays them out: the points in order,
// then in reverse. A scan of a few IDs costs less than a map's hash, and
// touches one small slice where a map touches its groups.
func (a *Accumulator) stepOf(point string, reply bool) (int, bool) {
	for i, id := range a.ids {
		if id == point {
			if reply {
				return len(a.dirs) - 1 - i, true
			}
			return i, true
		}
	}
	return 0, false
}

func validatePath(path *topology.Path) error {
	switch {
	case path == nil:
		return errors.New("no path")
	case len(path.Points) == 0:
		return errors.New("path has no capture points")
	}
	seen := make(map[string]bool, len(path.Points))
	for _, p := range path.Points {
		if seen[p.ID] {
			return fmt.Errorf("duplicate point ID %q in path", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}

func validateSources(path *topology.Path, sources []ProbeSource) error {
	switch {
	case len(sources) == 0:
		return errors.New("no probe source")
	case len(sources) > maxSources:
		return fmt.Errorf("%d probe sources: the report takes the traced one and at most a baseline", len(sources))
	case sources[0].NetNS != "" && sources[0].NetNS != path.Source.NetNS:
		return fmt.Errorf("traced source in %s, but the path starts in %s", sources[0].NetNS, path.Source.NetNS)
	}
	for i, s := range sources {
		switch {
		case s.RunID == 0:
			return fmt.Errorf("probe source %d has no run id", i)
		case slices.ContainsFunc(sources[:i], func(o ProbeSource) bool { return o.RunID == s.RunID }):
			return fmt.Errorf("probe source %d: run id %#x is another source's too", i, s.RunID)
		case i > 0 && s.NetNS == "":
			return fmt.Errorf("probe source %d (the baseline) has no netns", i)
		}
	}
	return nil
}

// Add folds one observation in. Observations of the traced source are
// placed in their probe's timeline; those of the other sources are set
// aside, per source; those of no source, and the traced source's that cross
// an unknown point or a point the wrong way, are counted as ignored. So
// are the traced source's that come after their probe was folded (more
// than settle after it was answered or given up on), or when MaxPending
// probes beyond ExactProbes already wait for their record.
func (a *Accumulator) Add(o capture.Observation) {
	p := a.place(&o)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch p.tcp {
	case tcpRequest:
		if p.src >= 0 {
			for _, answer := range a.ties.request(o, tiedProbe{p.src, p.seq}) { // answers seen before this SYN
				q := a.place(&answer)
				q.src, q.seq = p.src, p.seq
				a.addPlaced(&answer, q)
			}
		}
	case tcpAnswer:
		t, ok := a.ties.reply(o)
		if !ok { // its SYN may be seen at another point, whose ring is read later
			a.ignored += a.ties.hold(o)
			return
		}
		p.src, p.seq = t.src, t.seq
	}
	a.addPlaced(&o, p)
}

// addPlaced folds in o, placed at p. The caller holds the lock.
func (a *Accumulator) addPlaced(o *capture.Observation, p placement) {
	if p.src < 0 || (p.src == 0 && !p.onPath) {
		a.ignored++
		return
	}
	in := &a.arrived[p.src]
	in.obs++
	if !p.onPath {
		return
	}
	a.advance(o.At)
	s := in.lookup(p.seq)
	if s == nil {
		if !a.admit(p.src, p.seq) {
			if p.src == 0 {
				a.ignored++
			}
			return
		}
		s = in.add(p.seq, len(a.dirs))
	}
	first := !s.at[p.step].ok
	s.at[p.step] = earliestOf(s.at[p.step], o.At, o.Stamp)
	s.obs++
	if p.src == 0 {
		a.addrs[p.step].note(*o, first && p.step < len(a.ids)) // a request step
		a.foldSettled()
	}
}

// AddProbe records one finished probe of source i (in the order
// NewAccumulator was given the sources), as probe.Config.Sink hands it
// over: in sequence order, once the prober is done with it. A second
// probe of a sequence is ignored (the first counts), and so is a source
// out of range.
func (a *Accumulator) AddProbe(source int, p probe.Probe) {
	if source < 0 || source >= len(a.sources) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.record(source, p)
	a.foldSettled()
}

// placement is where an observation belongs.
type placement struct {
	src    int // the source whose token it carries; -1 for none
	seq    uint32
	step   int
	onPath bool // it is a probe or its answer crossing a step of the timeline the expected way
	tcp    tcpRole
}

// tcpRole says what a TCP observation does to the ties of SYNs to their
// answers (tcpTies).
type tcpRole uint8

const (
	tcpNone    tcpRole = iota
	tcpRequest         // a SYN probe: tie it at its point
	tcpAnswer          // a SYN-ACK or RST: no token, its source and sequence come from the tie
)

// place finds the source, sequence and step an observation belongs to,
// whatever its protocol (docs/report-format.md, "TCP and UDP probes"). It
// reads only what NewAccumulator set, so it needs no lock; a TCP answer's
// source and sequence are left to Add, which holds the ties.
func (a *Accumulator) place(o *capture.Observation) placement {
	tok, kind := markOf(*o)
	switch kind {
	case markNone:
		return placement{src: -1}
	case markTCPAnswer:
		return a.onStep(placement{src: -1, tcp: tcpAnswer}, o, true)
	}
	p := a.placeToken(tok.RunID, tok.Seq)
	switch kind {
	case markRequest:
		if o.Proto == capture.ProtoTCP {
			p.tcp = tcpRequest
		}
		return a.onStep(p, o, false)
	case markReply:
		return a.onStep(p, o, true)
	case markEcho:
		// A UDP echo returns the datagram as it came: the direction the
		// point is crossed in tells the request from the reply.
		i, ok := a.stepOf(o.Point, false)
		return a.onStep(p, o, !ok || a.dirs[i] != o.Dir)
	}
	return p // markStray: its probe's, on no step
}

// placeToken is the placement of a token's run id and sequence.
func (a *Accumulator) placeToken(runID uint64, seq uint32) placement {
	return placement{src: slices.IndexFunc(a.sources, func(s ProbeSource) bool { return s.RunID == runID }), seq: seq}
}

// onStep completes p with the step o crosses as a request or a reply, and
// whether it crosses it the expected way.
func (a *Accumulator) onStep(p placement, o *capture.Observation, reply bool) placement {
	i, ok := a.stepOf(o.Point, reply)
	p.step, p.onPath = i, ok && a.dirs[i] == o.Dir
	return p
}

// Result returns the report of the run, finished: the traced source's
// probes measured along every segment of the path from what was added,
// the capture's counters on every point, what cnitrace's own socket
// missed, Incomplete when the run was interrupted, and with a baseline
// source the Baseline block. It may be called more than once, and changes
// nothing: what was added before it counts. It returns an error only for
// probe results that do not fit the sources: one per source, none nil,
// each of its source's run.
func (a *Accumulator) Result(rec Recorded) (*Result, error) {
	if err := a.checkProbes(rec.Probes); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	pts := points(a.path, rec.Stats)
	steps := buildSteps(a.path, pts)
	exact, pending, ignored := a.traced(rec.Probes[0])
	ignored += a.ties.waiting() // TCP answers no SYN was seen for
	plan := a.plan
	if plan == nil {
		plan = planSpans(steps, exact)
	}
	t := newTally(len(steps), plan, false, len(exact))
	for _, l := range exact {
		t.fold(l, steps)
	}
	if a.tail != nil || len(pending) > 0 {
		tail := newTally(len(steps), plan, true, 0)
		if a.tail != nil {
			tail = a.tail.clone()
		}
		for _, l := range pending {
			tail.fold(l, steps)
		}
		t.merge(tail)
	}
	r := correlate(a.path, rec.Probes[0], pts, steps, t, exact, a.addrs)
	r.Probes.Ignored = ignored
	r.Incomplete = rec.Interrupted
	transport(r, a.sources[0], a.replies(rec.Probes[0]), steps, a.addrs)
	if len(a.sources) > 1 {
		r.Baseline = a.baseline(r, exact, rec.Probes[1], steps)
	}
	return r, nil
}

// checkProbes reports the first probe result that does not fit its source.
func (a *Accumulator) checkProbes(probes []*probe.Result) error {
	if len(probes) != len(a.sources) {
		return fmt.Errorf("got %d probe results for %d probe sources", len(probes), len(a.sources))
	}
	for i, p := range probes {
		switch {
		case p == nil:
			return fmt.Errorf("no probe result for probe source %d", i)
		case p.RunID != a.sources[i].RunID:
			return fmt.Errorf("probe result %d is of run %#x, its source's is %#x", i, p.RunID, a.sources[i].RunID)
		}
	}
	return nil
}
