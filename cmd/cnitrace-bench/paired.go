//go:build linux

package main

import (
	"slices"
	"strconv"
)

// probeKey names one probe: its run id and sequence, as its token has them.
type probeKey struct {
	RunID uint64
	Seq   uint32
}

// stepOf is the index of the step in r's stamps that starts segment s,
// or -1 when s is not two consecutive steps of them (r must have stamps).
func (r report) stepOf(s segment) int {
	steps := r.Stamps.Steps
	i := slices.IndexFunc(steps, func(st struct {
		Point string
		Reply bool
	}) bool {
		return st.Point == s.From && st.Reply == (s.Direction == "reply")
	})
	if i < 0 || i+1 >= len(steps) || steps[i+1].Point != s.To {
		return -1
	}
	return i
}

// spans returns how long each probe took across segment s, in us, from the
// report's stamps (trace --for-merge): the stamp at the step that ends s
// minus the stamp at the step that starts it. It is nil when the report
// has no stamps or s is not two consecutive steps of them.
func (r report) spans(s segment) map[probeKey]float64 {
	if r.Stamps == nil {
		return nil
	}
	i := r.stepOf(s)
	if i < 0 {
		return nil
	}
	out := map[probeKey]float64{}
	for _, run := range r.Stamps.Runs {
		id, err := strconv.ParseUint(run.RunID, 16, 64)
		if err != nil {
			continue
		}
		for _, p := range run.Probes {
			if len(p.At) > i+1 && p.At[i] != 0 && p.At[i+1] != 0 {
				out[probeKey{id, p.Seq}] = float64(p.At[i+1]-p.At[i]) / 1000
			}
		}
	}
	return out
}

// minPaired is the fewest probes a round must pair (seen by cnitrace
// across the held segment and held by the injector) to give a figure.
const minPaired = 10

// pairedRound is one round of a site compared probe by probe, on the
// probes cnitrace measured across the held segment and the injector held,
// in the run without the delay and in the run with it.
type pairedRound struct {
	Probes    int     // paired probes, the fewer of the two runs'
	Truth     float64 // the hold's median with the delay minus without
	Recovered float64 // cnitrace's span's median with minus without
	// Error is the median of span - hold with the delay minus the same
	// without: cnitrace's error on the same packets. What the segment
	// holds besides the injector (the wire's crossing, the queue's round
	// trip through the kernel) is in both runs and cancels.
	Error float64
}

// pairRound compares a site's spans and holds (us, by probe) without the
// delay and with it; false when either run paired fewer than minPaired
// probes.
func pairRound(baseSpans, baseHolds, withSpans, withHolds map[probeKey]float64) (pairedRound, bool) {
	bs, bh, br := pair(baseSpans, baseHolds)
	ws, wh, wr := pair(withSpans, withHolds)
	if len(bs) < minPaired || len(ws) < minPaired {
		return pairedRound{Probes: min(len(bs), len(ws))}, false
	}
	return pairedRound{
		Probes:    min(len(bs), len(ws)),
		Truth:     median(wh) - median(bh),
		Recovered: median(ws) - median(bs),
		Error:     median(wr) - median(br),
	}, true
}

// pair returns the spans, the holds and span - hold of the probes that
// have both.
func pair(spans, holds map[probeKey]float64) (s, h, resid []float64) {
	for k, sp := range spans {
		if ho, ok := holds[k]; ok {
			s, h, resid = append(s, sp), append(h, ho), append(resid, sp-ho)
		}
	}
	return s, h, resid
}
