package report

import (
	"cmp"
	"errors"
	"slices"
	"sync"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
)

// Accumulator folds observations into per-probe timelines as they arrive,
// so a long run keeps 16 bytes per probe and step rather than every
// observation: feed it from the capture (capture.Config.Sink) while probing,
// then call Result once. It is safe for concurrent use.
type Accumulator struct {
	path  *topology.Path
	run   uint64
	index map[stepKey]int
	dirs  []topology.Dir // the crossing direction of every step

	// baseline is the run id of the baseline probes (SetBaseline); 0 when
	// there are none.
	baseline uint64

	mu          sync.Mutex
	addrs       []stepAddrs // per step, the addresses probes carried there
	bySeq       map[uint32]*seen
	ignored     int
	baselineObs int
	baseSeen    map[uint32][]sighting // the baseline run's, by sequence and step
}

// seen is what arrived for one sequence number of the run.
type seen struct {
	at  []sighting
	obs int // observations placed, for the ignored count of unsent sequences
}

// NewAccumulator returns an Accumulator for the probes of run runID along
// path. It returns an error for a path it cannot use: nil, without points,
// or with duplicate point IDs.
func NewAccumulator(path *topology.Path, runID uint64) (*Accumulator, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	a := &Accumulator{path: path, run: runID, index: map[stepKey]int{}, bySeq: map[uint32]*seen{}}
	for i, s := range buildSteps(path, make([]Point, len(path.Points))) {
		a.index[stepKey{s.point.ID, s.reply}] = i
		a.dirs = append(a.dirs, s.dir)
		a.addrs = append(a.addrs, stepAddrs{})
	}
	return a, nil
}

// SetBaseline names the run of the baseline probes (CompareBaseline), sent
// from the node's netns alongside the traced ones: their packets cross the
// node's points too, and are counted by BaselineObservations instead of as
// ignored. Call it before the first Add.
func (a *Accumulator) SetBaseline(runID uint64) { a.baseline = runID }

// BaselineObservations returns how many observations of the baseline run
// were set aside.
func (a *Accumulator) BaselineObservations() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.baselineObs
}

// Add folds one observation in. Observations of the baseline run are set
// aside; those of other runs, of unknown points or crossing a point the
// wrong way are counted as ignored.
func (a *Accumulator) Add(o capture.Observation) {
	seq, i, ok := a.place(o)
	var bl baselineSighting
	if !ok {
		bl = a.placeBaseline(o)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if bl.ours {
		a.noteBaseline(bl, o)
		return
	}
	if !ok {
		a.ignored++
		return
	}
	s := a.bySeq[seq]
	if s == nil {
		s = &seen{at: make([]sighting, len(a.dirs))}
		a.bySeq[seq] = s
	}
	s.at[i] = earliest(s.at[i], o)
	s.obs++
	a.addrs[i].note(o)
}

// place finds the sequence and step an observation belongs to.
func (a *Accumulator) place(o capture.Observation) (uint32, int, bool) {
	if !o.IsRequest() && !o.IsReply() {
		return 0, 0, false
	}
	pl, err := probe.ParsePayload(o.Payload)
	if err != nil || pl.RunID != a.run {
		return 0, 0, false
	}
	i, ok := a.index[stepKey{o.Point, o.IsReply()}]
	if !ok || a.dirs[i] != o.Dir {
		return 0, 0, false
	}
	return pl.Seq, i, true
}

// timelines joins what arrived with the probes sent, one timeline per
// probe in sequence order, and counts the observations no probe claims.
func (a *Accumulator) timelines(probes *probe.Result) ([]*timeline, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lines := make([]*timeline, 0, len(probes.Probes))
	claimed := make(map[uint32]bool, len(probes.Probes))
	for _, p := range probes.Probes {
		if claimed[p.Seq] {
			continue // a sequence sent twice is a probe bug; keep the first
		}
		claimed[p.Seq] = true
		l := &timeline{probe: p}
		if s := a.bySeq[p.Seq]; s != nil {
			l.at = s.at
		} else {
			l.at = make([]sighting, len(a.dirs))
		}
		lines = append(lines, l)
	}
	ignored := a.ignored
	for seq, s := range a.bySeq {
		if !claimed[seq] {
			ignored += s.obs
		}
	}
	slices.SortFunc(lines, func(x, y *timeline) int { return cmp.Compare(x.probe.Seq, y.probe.Seq) })
	return lines, ignored
}

// errNoProbes is returned by Result without a probe result.
var errNoProbes = errors.New("no probe result")
