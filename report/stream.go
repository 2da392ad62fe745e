package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// Bounds of what an Accumulator keeps, whatever the length of the run.
const (
	// ExactProbes is how many probes of the traced source (those with the
	// lowest sequence numbers) keep their whole timeline until Result: over
	// them every figure is exact, as it is for a run of no more probes.
	// Later probes are folded into counters (exact) and sketches
	// (percentiles within SketchError).
	ExactProbes = 10_000
	// MaxPending is how many probes beyond ExactProbes may wait to be
	// folded: in flight (packets seen, no record yet) or settling. When
	// more would, the oldest is folded at once, and packets of a probe
	// beyond it are ignored.
	MaxPending = 1 << 15
)

// settle is how long after a probe was answered (or given up on, for an
// unanswered one) its packets may still arrive from the capture: the
// ring's block retire timeout, a reader's poll and its scheduling. The
// run's own times measure it (the latest capture stamp, send or receive
// time added), never the clock.
const settle = time.Second

// stream is the Accumulator's state for the traced probes beyond
// ExactProbes: the run's time, the probes waiting to settle, and the tally
// of those folded. Its methods need the Accumulator's lock.
type stream struct {
	clock int64    // the latest time the run gave, Unix ns
	queue []uint32 // sequences with a record, waiting to settle, in arrival order
	plan  []span   // decided on the first ExactProbes probes at the first fold
	tail  *tally   // the probes folded so far; nil before the first fold
}

// advance moves the run's time to t, if later.
func (s *stream) advance(t time.Time) {
	if !t.IsZero() {
		s.clock = max(s.clock, t.UnixNano())
	}
}

// admit reports whether packets of sequence seq of source src are kept:
// all those of the first ExactProbes probes; beyond, only the traced
// source's, for a probe not folded yet, while fewer than MaxPending wait.
func (a *Accumulator) admit(src int, seq uint32) bool {
	in := &a.arrived[src]
	switch {
	case seq < ExactProbes:
		return true
	case src != 0, int64(seq) <= in.folded:
		return false
	}
	return in.beyond < MaxPending
}

// record adds probe p of source src: it is kept if it is among the first
// ExactProbes, or for the traced source until it is folded; the counts
// take it either way.
func (a *Accumulator) record(src int, p probe.Probe) {
	in := &a.arrived[src]
	if in.has(p.Seq) || int64(p.Seq) <= in.folded {
		return
	}
	in.sent++
	if p.Answered() {
		in.received++
	}
	if int(p.Reply) < len(in.replies) {
		in.replies[p.Reply]++
	}
	a.advance(p.SentAt)
	a.advance(p.ReceivedAt)
	switch {
	case p.Seq < ExactProbes:
		in.keep(p)
	case src == 0:
		in.keep(p)
		a.queue = append(a.queue, p.Seq)
	}
}

// settledAt is when p's packets are all in: settle after its reply was
// read, or after its deadline when it had none.
func settledAt(p *probe.Probe) int64 {
	t := p.Deadline
	switch {
	case p.Answered():
		t = p.ReceivedAt
	case t.IsZero():
		t = p.SentAt
	}
	return t.UnixNano() + int64(settle)
}

// foldSettled folds the traced probes whose packets are all in, oldest
// first, and the oldest ones regardless while more than MaxPending wait.
func (a *Accumulator) foldSettled() {
	in := &a.arrived[0]
	for len(a.queue) > 0 {
		seq := a.queue[0]
		if a.clock < settledAt(in.recs[seq]) && len(a.queue) <= MaxPending && in.beyond <= MaxPending {
			return
		}
		a.queue = a.queue[1:]
		a.fold(seq)
	}
}

// fold moves probe seq of the traced source into the tail and forgets its
// timeline. The first fold decides the plan on the first ExactProbes
// probes.
func (a *Accumulator) fold(seq uint32) {
	in := &a.arrived[0]
	if a.tail == nil {
		exact, _, _ := a.lines(nil, false)
		a.plan = planSpans(a.steps, exact)
		a.tail = newTally(len(a.steps), a.plan, true, 0)
	}
	a.tail.fold(a.line(in, in.recs[seq]), a.steps)
	in.forget(seq)
	in.folded = max(in.folded, int64(seq))
	a.ties.forget(tiedProbe{0, seq})
}

// line is the timeline of probe p of a source, from what arrived of it.
func (a *Accumulator) line(in *arrivals, p *probe.Probe) *timeline {
	l := &timeline{probe: p}
	if s := in.lookup(p.Seq); s != nil {
		l.at = s.at
	} else {
		l.at = make([]sighting, len(a.dirs))
	}
	return l
}

// union returns the records of source src in res (a run without a Sink)
// not added before, in res's order, the first of a sequence only, and the
// source's counts of records including them. Those added are in the
// source's arrivals; nothing of them changes.
func (a *Accumulator) union(src int, res *probe.Result) (extra []probe.Probe, sent, received int) {
	in := &a.arrived[src]
	sent, received = in.sent, in.received
	var taken map[uint32]bool // sequences of extra
	for _, p := range res.Probes {
		if in.has(p.Seq) || taken[p.Seq] || int64(p.Seq) <= in.folded {
			continue
		}
		sent++
		if p.Answered() {
			received++
		}
		if p.Seq < ExactProbes || src == 0 {
			if taken == nil {
				taken = map[uint32]bool{}
			}
			taken[p.Seq] = true
			extra = append(extra, p)
		}
	}
	return extra, sent, received
}

// replies counts the traced source's answered probes by what answered
// them, those of res not added before included, as union counts them.
func (a *Accumulator) replies(res *probe.Result) [probe.Unreachable + 1]int {
	in := &a.arrived[0]
	n := in.replies
	for _, p := range res.Probes {
		if in.has(p.Seq) || int64(p.Seq) <= in.folded || int(p.Reply) >= len(n) {
			continue
		}
		n[p.Reply]++
	}
	return n
}

// traced returns the traced source's timelines of the records added and
// those of res not added before: the first ExactProbes and the later ones
// not folded yet, each in sequence order, and the count of observations
// ignored, including those of sequences no record claims.
func (a *Accumulator) traced(res *probe.Result) (exact, pending []*timeline, ignored int) {
	extra, _, _ := a.union(0, res)
	exact, pending, unclaimed := a.lines(extra, true)
	return exact, pending, a.ignored + unclaimed
}

// lines returns the traced source's timelines of the records added and of
// extra (records not added), split at ExactProbes, each in sequence order,
// and, if asked, counts the observations that no record claims.
func (a *Accumulator) lines(extra []probe.Probe, count bool) (exact, pending []*timeline, unclaimed int) {
	in := &a.arrived[0]
	add := func(p *probe.Probe) {
		if p.Seq < ExactProbes {
			exact = append(exact, a.line(in, p))
		} else {
			pending = append(pending, a.line(in, p))
		}
	}
	in.eachRecord(add)
	var claimed map[uint32]bool // sequences of extra
	for i, p := range extra {
		add(&extra[i])
		if count {
			if claimed == nil {
				claimed = make(map[uint32]bool, len(extra))
			}
			claimed[p.Seq] = true
		}
	}
	if count {
		in.eachSeen(func(seq uint32, s *seen) {
			if !in.has(seq) && !claimed[seq] {
				unclaimed += s.obs
			}
		})
	}
	bySeqOrder := func(x, y *timeline) int { return cmp.Compare(x.probe.Seq, y.probe.Seq) }
	slices.SortFunc(exact, bySeqOrder)
	slices.SortFunc(pending, bySeqOrder)
	return exact, pending, unclaimed
}

// baseline compares the traced source's first ExactProbes probes, whose
// report is r, with the baseline's (res and those added).
func (a *Accumulator) baseline(r *Result, exact []*timeline, res *probe.Result, steps []step) *Baseline {
	pod := &probe.Result{RunID: a.sources[0].RunID}
	for _, l := range exact {
		pod.Probes = append(pod.Probes, *l.probe)
	}
	extra, sent, received := a.union(1, res)
	node := &probe.Result{RunID: a.sources[1].RunID}
	a.arrived[1].eachRecord(func(p *probe.Probe) { node.Probes = append(node.Probes, *p) })
	node.Probes = append(node.Probes, extra...)
	slices.SortFunc(node.Probes, func(x, y probe.Probe) int { return cmp.Compare(x.Seq, y.Seq) })
	b := baselineOf(r, pod, sourceRecord{a.sources[1], node, &a.arrived[1], steps})
	b.Sent, b.Received = sent, received
	return b
}
