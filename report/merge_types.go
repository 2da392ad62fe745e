package report

import "errors"

// ClassTarget is the class of a merged report's turnaround: the target
// pod's own stack, from its interface receiving the request to it sending
// the reply, timed on the target node's clock.
const ClassTarget = "target"

// NoteClockOffset marks a one-way wire segment of a merged report: timed
// across the two nodes' clocks with the estimated offset, so each probe's
// figure is within the offset's bound of the truth.
const NoteClockOffset NoteKind = "clock offset"

// Disagreement kinds: where the two nodes' files tell different stories
// of one probe. Merge reports them and counts none as lost.
const (
	// DisagreeUnseenAtTarget: the source node saw the probe's reply come
	// back, the target node never saw the probe.
	DisagreeUnseenAtTarget = "answered, never seen at the target node"
	// DisagreeTargetOnly: the target node saw the probe, the source node
	// never did (the source's capture missed it, or the file is another
	// run's with the same id).
	DisagreeTargetOnly = "seen at the target node only"
	// DisagreeTwoTargets: two listeners' files both hold the probe.
	DisagreeTwoTargets = "seen at two target nodes"
	// DisagreeNoListener: the probe went to a backend no listener's file
	// is of.
	DisagreeNoListener = "its backend has no listener file"
)

// ErrNotMergeable says an input cannot be merged: a report traced without
// --for-merge, a stamps record of the wrong role, no run in common.
// Merge wraps it with what it found.
var ErrNotMergeable = errors.New("cannot merge")

// Merged is what a merged report adds to a Result: which nodes it spans,
// the wire's round trip (no clock needed), the two one-way wires with the
// clock offset they were timed with and its hard bound, and what the files
// disagree on.
type Merged struct {
	// Nodes are the source node (ID "a", RoleTrace) and the target's ("b",
	// RoleListen): their points' IDs start with it.
	Nodes []MergedNode `json:"nodes"`
	RunID RunID        `json:"run_id"`
	// Probes counts the run's probes the source node saw that went to this
	// target (all of them with one listener); Matched those the target
	// node saw too. OutsideWindow counts those sent while the listener was
	// not capturing, left out of every segment.
	Probes        int `json:"probes"`
	Matched       int `json:"matched"`
	OutsideWindow int `json:"outside_window,omitempty"`
	// WireRTT is, per probe seen at both uplinks, the source uplink's RX
	// minus its TX, minus the target uplink's TX minus its RX: each
	// difference on one clock, so no clock agreement is needed.
	WireRTT *Dist `json:"wire_rtt_us,omitempty"`
	// Request and Reply are the one-way wires, timed with Clock's offset:
	// each probe's within Clock.BoundUS of the truth. Nil when no offset
	// could be estimated (Clock.Error says why).
	Request *Dist        `json:"wire_request_us,omitempty"`
	Reply   *Dist        `json:"wire_reply_us,omitempty"`
	Clock   *MergedClock `json:"clock"`
	// Directions says which one-way wire is slower, or that the bound is
	// too wide to tell them apart.
	Directions string `json:"directions"`
	// Dropped lists the runs of the files that are not merged: those the
	// other file lacks.
	// Targets, when the run's probes went to several listeners' pods (a
	// Service's backends), lists every one of them with the probes it
	// got, this report's too: each report holds only its target's share.
	Targets       []TargetShare  `json:"targets,omitempty"`
	Dropped       []DroppedRun   `json:"dropped_runs,omitempty"`
	Disagreements []Disagreement `json:"disagreements,omitempty"`
}

// MergedNode is one node of a merged report.
type MergedNode struct {
	ID   string `json:"id"` // "a", "b", ...: the prefix of its points' IDs
	Node string `json:"node,omitempty"`
	Role string `json:"role"`
	// Pod is the address of the node's pod on the path: the source's, or
	// the target's.
	Pod string `json:"pod"`
}

// TargetShare is one target of a merge of several listeners: its node ID,
// its pod and how many of the run's probes went to it.
type TargetShare struct {
	Node   string `json:"node"`
	Pod    string `json:"pod"`
	Probes int    `json:"probes"`
}

// MergedClock is the target node's clock minus the source's, as the
// probes tell it.
type MergedClock struct {
	Samples int `json:"samples"` // probes seen at both uplinks, both ways
	// OffsetUS is the estimate at the run's first sample (the first probe
	// seen at both uplinks both ways; the text report says "at the first
	// probe"), DriftPPM how fast
	// it changes (fitted only for runs of DriftMinSpan or longer), BoundUS
	// the hard bound: every offset consistent with every probe is within
	// it of the estimate, over the whole run.
	OffsetUS    float64 `json:"offset_us"`
	DriftPPM    float64 `json:"drift_ppm"`
	DriftFitted bool    `json:"drift_fitted"`
	BoundUS     float64 `json:"bound_us"`
	// Error says why no offset was estimated; then the other fields are 0.
	Error string `json:"error,omitempty"`
}

// DroppedRun is a run one file holds and the merge left out.
type DroppedRun struct {
	Node   string `json:"node"` // the MergedNode ID of the file, or its node name
	RunID  RunID  `json:"run_id"`
	Probes int    `json:"probes"`
	Why    string `json:"why"`
}

// Disagreement counts the probes of one kind of disagreement, with the
// first sequences, for a look at the pcapng.
type Disagreement struct {
	Kind   string   `json:"kind"`
	Probes int      `json:"probes"`
	Seqs   []uint32 `json:"seqs"`
}

// maxDisagreeSeqs is how many sequences a Disagreement lists.
const maxDisagreeSeqs = 10

// addDisagreement counts seq under kind in ds.
func addDisagreement(ds []Disagreement, kind string, seq uint32) []Disagreement {
	for i := range ds {
		if ds[i].Kind == kind {
			ds[i].Probes++
			if len(ds[i].Seqs) < maxDisagreeSeqs {
				ds[i].Seqs = append(ds[i].Seqs, seq)
			}
			return ds
		}
	}
	return append(ds, Disagreement{Kind: kind, Probes: 1, Seqs: []uint32{seq}})
}
