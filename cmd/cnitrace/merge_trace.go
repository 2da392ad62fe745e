package main

import (
	"flag"
	"os"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

// addMergeFlags registers trace's --for-merge.
func addMergeFlags(fs *flag.FlagSet, c *traceConfig) {
	fs.BoolVar(&c.forMerge, "for-merge", false, "add every probe's capture stamps to the JSON report (needs --format json), for 'cnitrace merge' with the target node's 'cnitrace listen' file (docs/two-nodes.md)")
}

// validateForMerge checks that --for-merge goes with a JSON report: only
// the JSON carries the stamps.
func (c *traceConfig) validateForMerge() error {
	if c.forMerge && c.format != report.FormatJSON {
		return cli.Usagef("--for-merge: the stamps go in the JSON report only: add --format json (and --out FILE.json for merge)")
	}
	return nil
}

// stampRecorder records the traced run's stamps for --for-merge; a nil
// one records nothing.
type stampRecorder struct {
	rec   *report.Recorder
	start time.Time
}

// newStampRecorder returns the recorder of the traced source's run (run
// id runID) along path, or nil without --for-merge.
func (c *traceConfig) newStampRecorder(path *topology.Path, runID uint64) (*stampRecorder, error) {
	if !c.forMerge {
		return nil, nil
	}
	rec, err := report.NewRecorder(path, report.RoleTrace, runID)
	if err != nil {
		return nil, err
	}
	return &stampRecorder{rec: rec, start: time.Now()}, nil
}

func (s *stampRecorder) add(o capture.Observation) {
	if s != nil {
		s.rec.Add(o)
	}
}

// attach puts the stamps recorded into r, once the captures are drained.
func (s *stampRecorder) attach(r *report.Result) {
	if s == nil {
		return
	}
	s.rec.Window(s.start, time.Now())
	node, _ := os.Hostname()
	r.Stamps = s.rec.Stamps(node)
}
