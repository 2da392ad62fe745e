package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cnitrace/cnitrace/topology"
)

// Merge builds the report of one path across nodes from the source node's
// report, traced with --for-merge (src.Stamps), and the stamps records of
// one or more target nodes (`cnitrace listen` files): one Result for each
// target node that saw probes of src's run, in the order given, from the
// source pod to that node's pod and back. Every segment is timed on its
// own node's clock only; only the two wire segments cross clocks, with the
// offset the probes themselves bound (Merged.Clock). Probes are matched by
// their token (run id and sequence), never by time.
//
// Each probe's far half comes from the listener file that holds it; a
// probe no listener holds goes to the one whose pod it was sent to (its
// destination at the source's uplink, after any DNAT), or with one
// listener to that one. Runs of the listener files that src is not of are
// dropped, and said so (Merged.Dropped); probes the files disagree on are
// counted in Merged.Disagreements, never as lost. src is not changed.
//
// Errors wrap ErrNotMergeable: src without stamps, a record of the wrong
// role or shape, no listener holding src's run.
func Merge(src *Result, listeners ...*Stamps) ([]*Result, error) {
	if err := checkMergeInputs(src, listeners); err != nil {
		return nil, err
	}
	run := src.Stamps.Runs[0]
	held := make([]map[uint32]*ProbeStamp, len(listeners))
	dropped := make([][]DroppedRun, len(listeners))
	common := false
	for i, l := range listeners {
		id := nodeID(i + 1)
		for j := range l.Runs {
			lr := &l.Runs[j]
			if lr.RunID != run.RunID {
				dropped[i] = append(dropped[i], DroppedRun{Node: id, RunID: lr.RunID, Probes: len(lr.Probes), Why: "not the source's run (another trace's, or a warm-up probe)"})
				continue
			}
			held[i] = map[uint32]*ProbeStamp{}
			for k := range lr.Probes {
				held[i][lr.Probes[k].Seq] = &lr.Probes[k]
			}
			common = true
		}
	}
	if !common {
		return nil, fmt.Errorf("%w: the source's run %s is in none of the listen files (%s): were they listening while it ran, on the nodes of its target?", ErrNotMergeable, run.RunID, runList(listeners))
	}
	as := assign(run, listeners, held)
	pairs := as.pairs
	sent := make(map[uint32]bool, len(run.Probes))
	for _, p := range run.Probes {
		sent[p.Seq] = true
	}
	var out []*Result
	for i, l := range listeners {
		if len(pairs[i]) == 0 && len(listeners) > 1 {
			continue
		}
		r, err := mergePair(src, l, nodeID(i+1), pairs[i])
		if err != nil {
			return nil, err
		}
		m := r.Merge
		m.Dropped = dropped[i]
		m.Disagreements = append(m.Disagreements, as.ds[i]...)
		if len(out) == 0 {
			m.Disagreements = append(m.Disagreements, as.noListener...)
		}
		for _, seq := range slices.Sorted(maps.Keys(held[i])) {
			if !sent[seq] {
				m.Disagreements = addDisagreement(m.Disagreements, DisagreeTargetOnly, seq)
			}
		}
		for j := range m.Disagreements {
			slices.Sort(m.Disagreements[j].Seqs)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, nothingLeft(run, len(listeners), as.noListener)
	}
	if len(out) > 1 {
		shareTargets(out)
	}
	return out, nil
}

// nothingLeft is the error of a merge of several listen files none of
// which got a probe of run: each report would be empty, and the probes
// without a listener would have none to be counted in.
func nothingLeft(run StampRun, listeners int, noListener []Disagreement) error {
	without := 0
	for _, d := range noListener {
		without += d.Probes
	}
	return fmt.Errorf("%w: no listen file got a probe of run %s: of its %d %s, %d went to a backend none of the %d listen files is of (give the listen file of the pod the probes went to, one per backend; a run with no probe captured on the source node needs tracing again)",
		ErrNotMergeable, run.RunID, len(run.Probes), plural(len(run.Probes), "probe", "probes"), without, listeners)
}

// shareTargets tells each of several reports (a Service's backends, one
// listener each) which share of the run it holds and where the others'
// are: every report's Merge.Targets lists them all.
func shareTargets(out []*Result) {
	var ts []TargetShare
	for _, r := range out {
		m := r.Merge
		ts = append(ts, TargetShare{Node: m.Nodes[1].ID, Pod: m.Nodes[1].Pod, Probes: m.Probes + m.OutsideWindow})
	}
	for _, r := range out {
		r.Merge.Targets = slices.Clone(ts)
	}
}

// checkMergeInputs reports the first input Merge cannot use.
func checkMergeInputs(src *Result, listeners []*Stamps) error {
	switch {
	case src == nil:
		return fmt.Errorf("%w: no source report", ErrNotMergeable)
	case src.Stamps == nil:
		return fmt.Errorf("%w: the source report has no stamps: trace with --for-merge --format json", ErrNotMergeable)
	case src.Stamps.Role != RoleTrace:
		return fmt.Errorf("%w: the source's stamps are of role %q, want %q", ErrNotMergeable, src.Stamps.Role, RoleTrace)
	case src.Stamps.Path != nil && src.Stamps.Path.TurnaroundOrInferred() != topology.TurnNetwork:
		return fmt.Errorf("%w: the source's path turns around on its own node (%s): no wire to split; its report already times the far end", ErrNotMergeable, src.Stamps.Path.TurnaroundOrInferred())
	case len(src.Stamps.Runs) != 1:
		return fmt.Errorf("%w: the source's stamps hold %d runs, want 1 (no probe was captured?)", ErrNotMergeable, len(src.Stamps.Runs))
	case len(listeners) == 0:
		return fmt.Errorf("%w: no listen file", ErrNotMergeable)
	}
	if err := checkStamps(src.Stamps); err != nil {
		return fmt.Errorf("%w: the source's stamps: %w", ErrNotMergeable, err)
	}
	for i, l := range listeners {
		switch {
		case l == nil:
			return fmt.Errorf("%w: listen file %d is empty", ErrNotMergeable, i+1)
		case l.Role != RoleListen:
			return fmt.Errorf("%w: listen file %d is of role %q, want %q", ErrNotMergeable, i+1, l.Role, RoleListen)
		case l.Path != nil && l.Path.TurnaroundOrInferred() != topology.TurnNetwork:
			return fmt.Errorf("%w: listen file %d: its path toward the source turns around on its own node (%s): the source is not on another node", ErrNotMergeable, i+1, l.Path.TurnaroundOrInferred())
		}
		if err := checkStamps(l); err != nil {
			return fmt.Errorf("%w: listen file %d: %w", ErrNotMergeable, i+1, err)
		}
	}
	return nil
}

// checkStamps checks that a record's steps fit its path and every probe
// its steps.
func checkStamps(s *Stamps) error {
	record := RecordStamps
	if s.Role == RoleListen {
		record = RecordListen
	}
	if err := checkStampsVersion(s.Version, record); err != nil {
		return err
	}
	if err := validatePath(s.Path); err != nil {
		return err
	}
	if len(s.Steps) != 2*len(s.Path.Points) {
		return fmt.Errorf("%d steps for a path of %d points", len(s.Steps), len(s.Path.Points))
	}
	for _, st := range s.Steps {
		if _, ok := s.Path.Point(st.Point); !ok {
			return fmt.Errorf("step at unknown point %q", st.Point)
		}
	}
	for _, r := range s.Runs {
		for _, p := range r.Probes {
			if len(p.At) != len(s.Steps) {
				return fmt.Errorf("run %s probe %d has %d stamps for %d steps", r.RunID, p.Seq, len(p.At), len(s.Steps))
			}
		}
	}
	return nil
}

// nodeID names the i-th node of a merge: a, b, c, ...
func nodeID(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return fmt.Sprintf("n%d", i)
}

// runList names the runs of the listen files, for an error.
func runList(listeners []*Stamps) string {
	var s []string
	for i, l := range listeners {
		var ids []string
		for _, r := range l.Runs {
			ids = append(ids, r.RunID.String())
		}
		if len(ids) == 0 {
			ids = []string{"no run"}
		}
		s = append(s, fmt.Sprintf("%d: %s", i+1, strings.Join(ids, " ")))
	}
	return strings.Join(s, "; ")
}
