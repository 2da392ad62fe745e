package report

import (
	"maps"
	"slices"
	"time"
)

// durations is a distribution being collected: every value, or, for the
// probes beyond ExactProbes, a sketch (then percentiles are within
// SketchError, and min, max and the count stay exact).
type durations struct {
	exact []time.Duration
	sk    *sketch
}

// sketched returns an empty distribution that keeps a sketch.
func sketched() durations { return durations{sk: &sketch{}} }

func (d *durations) add(v time.Duration) {
	if d.sk != nil {
		d.sk.add(v)
		return
	}
	d.exact = append(d.exact, v)
}

func (d *durations) count() int {
	if d.sk != nil {
		return int(d.sk.n)
	}
	return len(d.exact)
}

// merge adds o's values to d. If either is a sketch, d becomes one.
func (d *durations) merge(o durations) {
	if d.sk == nil && o.sk == nil {
		d.exact = append(d.exact, o.exact...)
		return
	}
	if d.sk == nil {
		d.sk = &sketch{}
		for _, v := range d.exact {
			d.sk.add(v)
		}
		d.exact = nil
	}
	d.sk.merge(o.sk)
	for _, v := range o.exact {
		d.sk.add(v)
	}
}

func (d durations) clone() durations {
	if d.sk != nil {
		return durations{sk: d.sk.clone()}
	}
	return durations{exact: slices.Clone(d.exact)}
}

// rank is the nearest-rank percentile p of the values; 0 when there are
// none.
func (d *durations) rank(p int) time.Duration {
	if d.sk != nil {
		return d.sk.rank(p)
	}
	if len(d.exact) == 0 {
		return 0
	}
	if !slices.IsSorted(d.exact) {
		slices.Sort(d.exact)
	}
	return rank(d.exact, p)
}

// dist summarises the values as microsecond percentiles; nil for none.
func (d *durations) dist() *Dist {
	if d.count() == 0 {
		return nil
	}
	if d.sk == nil {
		slices.Sort(d.exact) // once, for the four ranks
	}
	return &Dist{P50: micros(d.rank(50)), P90: micros(d.rank(90)), P99: micros(d.rank(99)), Max: micros(d.rank(100)), Min: micros(d.rank(0))}
}

// tally is what the report keeps of a set of probes of the traced source,
// folded in one timeline at a time: counters per segment and step,
// durations per segment and round trip, and what the verdict needs. The
// probes up to ExactProbes are folded at Result with exact durations;
// later ones as they settle, into sketches. Loss counts wait for Result,
// which knows which captures dropped packets.
type tally struct {
	plan             []span // the spans the segments are timed over
	probes, answered int
	seen, inherited  []int       // per segment
	timed            []durations // per segment, over its span
	// lastAt counts, per step, the unanswered probes last observed there
	// (the last step excluded: see late and unread).
	lastAt     []int
	never      int // unanswered, refused by nobody, observed nowhere
	refused    int // refused by the kernel at send, observed nowhere
	refusedErr string
	// late and unread count the unanswered probes whose reply reached the
	// source interface: after the probe's Deadline, or before it.
	late, unread           int
	rtt, ping, path, user  durations
	sendClock, recvClock   map[string]int
	sighted                bool // some probe was observed somewhere
	complete               int  // probes observed at every step
	rttSum                 int64
	rtts                   durations       // their capture RTTs
	fastest                time.Duration   // the first complete probe with the least capture RTT
	fastestSpans, spanSums []time.Duration // per segment: its duration, and the sum over complete probes
}

// newTally returns an empty tally for a timeline of nsteps steps, timed
// over plan; with sketch its durations are sketched, else kept with room
// for hint probes.
func newTally(nsteps int, plan []span, sketch bool, hint int) *tally {
	nseg := max(nsteps-1, 0)
	t := &tally{
		plan: plan, seen: make([]int, nseg), inherited: make([]int, nseg), timed: make([]durations, nseg),
		lastAt: make([]int, nsteps), sendClock: map[string]int{}, recvClock: map[string]int{},
		fastestSpans: make([]time.Duration, nseg), spanSums: make([]time.Duration, nseg),
	}
	if sketch {
		for i := range t.timed {
			t.timed[i] = sketched()
		}
		t.rtt, t.ping, t.path, t.user, t.rtts = sketched(), sketched(), sketched(), sketched(), sketched()
		return t
	}
	for _, d := range append([]*durations{&t.rtt, &t.ping, &t.path, &t.user, &t.rtts}, pointers(t.timed)...) {
		d.exact = make([]time.Duration, 0, hint)
	}
	return t
}

// fold adds one probe's timeline; steps give the crossing directions.
func (t *tally) fold(l *timeline, steps []step) {
	t.probes++
	if l.probe.Answered() {
		t.answered++
	}
	if l.last() >= 0 {
		t.sighted = true
	}
	for i := range t.seen {
		a, b := l.at[i], l.at[i+1]
		if a.ok && b.ok {
			t.seen[i]++
			if inheritedAt(steps, l.at, i+1) {
				t.inherited[i]++
			}
		}
		if !t.plan[i].separable || l.stale(steps, t.plan[i]) {
			continue
		}
		if d, ok := l.duration(t.plan[i]); ok {
			t.timed[i].add(d)
		}
	}
	t.foldLoss(l)
	t.foldRTT(l)
	t.foldExcess(l)
}

// foldLoss counts where an unanswered probe was last observed.
func (t *tally) foldLoss(l *timeline) {
	if l.probe.Answered() {
		return
	}
	last := l.last()
	switch {
	case last >= 0:
	case l.probe.SendErr != nil:
		t.refused++
		if t.refusedErr == "" {
			t.refusedErr = l.probe.SendErr.Error()
		}
		return
	default:
		t.never++
		return
	}
	if last < len(l.at)-1 {
		t.lastAt[last]++
		return
	}
	if dl := l.probe.Deadline; !dl.IsZero() && !l.at[last].time().Before(dl) {
		t.late++
	} else {
		t.unread++
	}
}

// foldRTT adds the probe's round trips and their clocks.
func (t *tally) foldRTT(l *timeline) {
	p := timelineOf(l)
	if d, ok := p.PathRTT(); ok {
		t.path.add(d)
	}
	if !p.Answered {
		return
	}
	d, _ := p.RTT()
	pd, _ := p.PingRTT()
	ud, _ := p.UserRTT()
	t.rtt.add(d)
	t.ping.add(pd)
	t.user.add(ud)
	t.sendClock[p.SendClock]++
	t.recvClock[p.ReceiveClock]++
}

// foldExcess adds a complete probe to what the verdict compares with the
// fastest one.
func (t *tally) foldExcess(l *timeline) {
	d, ok := l.captureRTT()
	if !ok || !l.complete() {
		return
	}
	t.foldProbe(d, func(i int) time.Duration {
		s, _ := l.duration(t.plan[i])
		return s
	})
}

// foldProbe adds a complete probe of round trip rtt, which spent
// spent(i) in the plan's separable span i, to what byExcess compares
// with the fastest probe; merge folds its probes here too.
func (t *tally) foldProbe(rtt time.Duration, spent func(i int) time.Duration) {
	t.complete++
	t.rttSum += int64(rtt)
	t.rtts.add(rtt)
	first := t.complete == 1 || rtt < t.fastest
	if first {
		t.fastest = rtt
	}
	for i, sp := range t.plan {
		if !sp.separable {
			continue
		}
		s := spent(i)
		t.spanSums[i] += s
		if first {
			t.fastestSpans[i] = s
		}
	}
}

// merge adds o, a tally over the same plan of later probes, to t.
func (t *tally) merge(o *tally) {
	t.probes += o.probes
	t.answered += o.answered
	for i := range t.seen {
		t.seen[i] += o.seen[i]
		t.inherited[i] += o.inherited[i]
		t.timed[i].merge(o.timed[i])
		t.spanSums[i] += o.spanSums[i]
	}
	for i := range t.lastAt {
		t.lastAt[i] += o.lastAt[i]
	}
	t.never, t.refused, t.late, t.unread = t.never+o.never, t.refused+o.refused, t.late+o.late, t.unread+o.unread
	if t.refusedErr == "" {
		t.refusedErr = o.refusedErr
	}
	for _, d := range []struct{ to, from *durations }{{&t.rtt, &o.rtt}, {&t.ping, &o.ping}, {&t.path, &o.path}, {&t.user, &o.user}, {&t.rtts, &o.rtts}} {
		d.to.merge(*d.from)
	}
	addCounts(t.sendClock, o.sendClock)
	addCounts(t.recvClock, o.recvClock)
	t.sighted = t.sighted || o.sighted
	if o.complete > 0 && (t.complete == 0 || o.fastest < t.fastest) {
		t.fastest = o.fastest
		copy(t.fastestSpans, o.fastestSpans)
	}
	t.complete += o.complete
	t.rttSum += o.rttSum
}

// pointers returns a pointer to every element of ds.
func pointers(ds []durations) []*durations {
	ps := make([]*durations, len(ds))
	for i := range ds {
		ps[i] = &ds[i]
	}
	return ps
}

func addCounts(to, from map[string]int) {
	for k, v := range from {
		to[k] += v
	}
}

// clone returns a copy of t that shares nothing with it but the plan.
func (t *tally) clone() *tally {
	c := *t
	c.seen, c.inherited, c.lastAt = slices.Clone(t.seen), slices.Clone(t.inherited), slices.Clone(t.lastAt)
	c.fastestSpans, c.spanSums = slices.Clone(t.fastestSpans), slices.Clone(t.spanSums)
	c.timed = make([]durations, len(t.timed))
	for i, d := range t.timed {
		c.timed[i] = d.clone()
	}
	c.rtt, c.ping, c.path, c.user, c.rtts = t.rtt.clone(), t.ping.clone(), t.path.clone(), t.user.clone(), t.rtts.clone()
	c.sendClock, c.recvClock = maps.Clone(t.sendClock), maps.Clone(t.recvClock)
	return &c
}
