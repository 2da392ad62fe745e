package report

import "github.com/cnitrace/cnitrace/probe"

// exactFirst is how many sequences a source's exact store holds until one
// beyond them arrives: a short run's. Then it takes room for all
// ExactProbes at once.
const exactFirst = 1 << 10

// exactSeqs is what arrived of one source's first ExactProbes sequences,
// by sequence: the records and, for each sequence some observation was
// placed for, its seen, whose sightings are a row of one array. Arrays
// indexed by sequence hold them without a map's slots and growth around
// every entry, and without being reallocated as the probes come in.
//
// The store holds the first exactFirst sequences, and from the first
// later one all ExactProbes at once: a long run's exact probes have their
// whole room (about 3.9 MB on a five-point path) after about a tenth of
// them, so the heap takes its size, and the garbage collector's goal its
// steady value, while they are still coming in. Grown probe by probe, the
// live heap would stop growing only with the last exact probe, and the
// heap would reach the new goal seconds after: the run's resident set
// would grow after its exact probes were in.
type exactSeqs struct {
	steps int           // sightings per sequence
	recs  []probe.Probe // by sequence, where kept says so
	kept  []bool
	seen  []seen     // by sequence; at is nil where nothing was placed
	rows  []sighting // the sightings of sequence seq are rows[seq*steps:][:steps]
}

// lookup returns what arrived of sequence seq, nil if nothing did.
func (e *exactSeqs) lookup(seq uint32) *seen {
	if int(seq) >= len(e.seen) || e.seen[seq].at == nil {
		return nil
	}
	return &e.seen[seq]
}

// add returns a new seen for sequence seq, with no sightings yet. The
// pointer is valid until the next add.
func (e *exactSeqs) add(seq uint32) *seen {
	e.grow(seq)
	i := int(seq) * e.steps
	s := &e.seen[seq]
	s.at = e.rows[i : i+e.steps : i+e.steps] // capped: an append never reaches the next row
	return s
}

// record returns the record of sequence seq, if one was kept.
func (e *exactSeqs) record(seq uint32) (probe.Probe, bool) {
	if int(seq) >= len(e.kept) || !e.kept[seq] {
		return probe.Probe{}, false
	}
	return e.recs[seq], true
}

// keep keeps record p.
func (e *exactSeqs) keep(p probe.Probe) {
	e.grow(p.Seq)
	e.recs[p.Seq], e.kept[p.Seq] = p, true
}

// grow makes room for sequence seq (below ExactProbes): exactFirst
// sequences, or all ExactProbes.
func (e *exactSeqs) grow(seq uint32) {
	if int(seq) < len(e.seen) {
		return
	}
	n := ExactProbes
	if seq < exactFirst {
		n = exactFirst
	}
	recs, kept := make([]probe.Probe, n), make([]bool, n)
	copy(recs, e.recs)
	copy(kept, e.kept)
	seen, rows := make([]seen, n), make([]sighting, n*e.steps)
	copy(rows, e.rows)
	for i, s := range e.seen {
		if s.at != nil {
			j := i * e.steps
			seen[i] = s
			seen[i].at = rows[j : j+e.steps : j+e.steps]
		}
	}
	e.recs, e.kept, e.seen, e.rows = recs, kept, seen, rows
}

// lookup returns what arrived of sequence seq, nil if nothing was kept.
func (in *arrivals) lookup(seq uint32) *seen {
	if seq < ExactProbes {
		return in.exact.lookup(seq)
	}
	return in.bySeq[seq]
}

// add returns a new seen for sequence seq, with no sightings yet, of steps
// steps. The pointer is valid until the next add.
func (in *arrivals) add(seq uint32, steps int) *seen {
	if seq < ExactProbes {
		return in.exact.add(seq)
	}
	s := in.spare.seen()
	if s == nil {
		s = &seen{at: make([]sighting, steps)}
	}
	in.bySeq[seq] = s
	in.beyond++
	return s
}

// spare is what the later sequences folded left: their seen, sightings
// and record, cleared, for the next sequences to take, so that a long
// run's steady state allocates nothing per probe (a map of records, each
// bigger than a map slot holds, would allocate one per insert). It holds
// at most what was pending at once, which was allocated anyway.
type spare struct {
	seens []*seen
	recs  []*probe.Probe
}

// seen returns a cleared seen, nil if there is none.
func (sp *spare) seen() *seen {
	n := len(sp.seens)
	if n == 0 {
		return nil
	}
	s := sp.seens[n-1]
	sp.seens = sp.seens[:n-1]
	return s
}

// rec returns a record to fill, allocated if none is spare.
func (sp *spare) rec() *probe.Probe {
	n := len(sp.recs)
	if n == 0 {
		return new(probe.Probe)
	}
	p := sp.recs[n-1]
	sp.recs = sp.recs[:n-1]
	return p
}

// forget drops what is kept of sequence seq from ExactProbes on, its
// record and observations, and keeps their memory for the next sequences.
// The caller is done with both.
func (in *arrivals) forget(seq uint32) {
	if p, ok := in.recs[seq]; ok {
		delete(in.recs, seq)
		*p = probe.Probe{}
		in.spare.recs = append(in.spare.recs, p)
	}
	if s, ok := in.bySeq[seq]; ok {
		delete(in.bySeq, seq)
		in.beyond--
		clear(s.at)
		s.obs = 0
		in.spare.seens = append(in.spare.seens, s)
	}
}

// record returns the record of sequence seq, if one is kept.
func (in *arrivals) record(seq uint32) (probe.Probe, bool) {
	if seq < ExactProbes {
		return in.exact.record(seq)
	}
	p, ok := in.recs[seq]
	if !ok {
		return probe.Probe{}, false
	}
	return *p, true
}

// has reports whether a record of sequence seq is kept.
func (in *arrivals) has(seq uint32) bool {
	if seq < ExactProbes {
		_, ok := in.exact.record(seq)
		return ok
	}
	_, ok := in.recs[seq]
	return ok
}

// keep keeps record p.
func (in *arrivals) keep(p probe.Probe) {
	if p.Seq < ExactProbes {
		in.exact.keep(p)
		return
	}
	r := in.spare.rec()
	*r = p
	in.recs[p.Seq] = r
}

// eachSeen calls f with every sequence something arrived of, and what did:
// the exact ones in sequence order, then the later ones.
func (in *arrivals) eachSeen(f func(seq uint32, s *seen)) {
	for i := range in.exact.seen {
		if s := &in.exact.seen[i]; s.at != nil {
			f(uint32(i), s)
		}
	}
	for seq, s := range in.bySeq {
		f(seq, s)
	}
}

// eachRecord calls f with every record kept: the exact ones in sequence
// order, then the later ones (a copy of each, the map's being out of
// reach). The exact ones are the store's own, valid until the next record
// is kept.
func (in *arrivals) eachRecord(f func(p *probe.Probe)) {
	for i, ok := range in.exact.kept {
		if ok {
			f(&in.exact.recs[i])
		}
	}
	for _, p := range in.recs {
		c := *p
		f(&c)
	}
}
