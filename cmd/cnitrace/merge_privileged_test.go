package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// Issue 14's direction and remote-half tests: a delay or a loss put on one
// direction of the wire, in node 2's forwarding or in node 2's pod, lands
// where it was put in the merged report.

// mergeDelay is the delay the remote-half tests inject: far above the
// lab's wire (~10 us) and the offset's bound, far below the probes'
// interval.
const mergeDelay = 2 * time.Millisecond

// wireDelay is the delay the direction tests put on the wire: the lab's
// delay line itself varies by a few hundred microseconds on a loaded
// machine (its p90 moves with it), a small part of 5 ms.
const wireDelay = 5 * time.Millisecond

// mergedRun listens on node 2 and traces n probes every 20 ms from node 1,
// calling during (if set) in the background while the trace runs, and
// merges.
func mergedRun(t *testing.T, l *lab.Lab, n int, during func(start time.Time)) *report.Result {
	t.Helper()
	ls := startListen(t, l)
	var wg sync.WaitGroup
	if during != nil {
		start := time.Now()
		wg.Go(func() { during(start) })
	}
	tf := traceForMerge(t, l, n, 20*time.Millisecond)
	wg.Wait()
	return mergeFiles(t, tf, ls.stop(t))
}

// delayThird puts faults f on the lab's wire for the middle third of a
// run of n probes every 20 ms that started at start, and takes them off
// again: a third of the probes cross the delayed wire, and the offset is
// still bound by the others. The third is counted from when the faults
// are in place: setting them (iptables) takes a while on a loaded
// machine. The delay line is retuned in place, so no probe is lost in
// the change.
func delayThird(t *testing.T, l *lab.Lab, n int, f lab.Faults) func(time.Time) {
	return func(start time.Time) {
		third := time.Duration(n) * 20 * time.Millisecond / 3
		time.Sleep(time.Until(start.Add(third)))
		if err := l.SetFaults(context.Background(), f); err != nil {
			t.Errorf("set faults: %v", err)
		}
		time.Sleep(third)
		if err := l.SetFaults(context.Background(), lab.Faults{Wire: true}); err != nil {
			t.Errorf("clear faults: %v", err)
		}
	}
}

func TestPrivilegedMergeDirection(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Faults: lab.Faults{Wire: true}})
	const n = 150
	base := mergedRun(t, l, n, nil)
	d := float64(wireDelay.Microseconds())
	grew := func(r *report.Result) (req, rep float64) {
		return r.Merge.Request.P90 - base.Merge.Request.P90, r.Merge.Reply.P90 - base.Merge.Reply.P90
	}
	within := func(x, lo, hi float64) bool { return x >= lo*d && x <= hi*d }

	t.Run("request", func(t *testing.T) {
		r := mergedRun(t, l, n, delayThird(t, l, n, lab.Faults{Wire: true, Network: lab.Network{Request: lab.Impairment{Delay: wireDelay}}}))
		req, rep := grew(r)
		t.Logf("request p90 +%.1f us, reply p90 +%.1f us, bound +/-%.1f us; %s", req, rep, r.Merge.Clock.BoundUS, r.Merge.Directions)
		if !within(req, 0.6, 1.4) || rep > 0.25*d {
			t.Errorf("a %s delay on the request wire: request p90 grew %.1f us, reply p90 %.1f us", wireDelay, req, rep)
		}
		if r.Merge.Clock.BoundUS > d/4 {
			t.Errorf("bound +/-%.1f us: too wide for the undelayed two thirds", r.Merge.Clock.BoundUS)
		}
		if v := r.Verdict; v.Class != report.ClassNetwork || v.Direction != report.DirRequest {
			t.Errorf("verdict %q, want the request wire", v.Text)
		}
	})
	t.Run("both", func(t *testing.T) {
		both := lab.Impairment{Delay: wireDelay}
		r := mergedRun(t, l, n, delayThird(t, l, n, lab.Faults{Wire: true, Network: lab.Network{Request: both, Reply: both}}))
		req, rep := grew(r)
		t.Logf("request p90 +%.1f us, reply p90 +%.1f us, bound +/-%.1f us", req, rep, r.Merge.Clock.BoundUS)
		if !within(req, 0.6, 1.4) || !within(rep, 0.6, 1.4) || abs(req-rep) > 0.3*d {
			t.Errorf("a %s delay each way: request p90 grew %.1f us, reply p90 %.1f us, want both by about as much", wireDelay, req, rep)
		}
	})
	for _, dir := range []string{report.DirRequest, report.DirReply} {
		t.Run("loss-"+dir, func(t *testing.T) {
			imp := lab.Impairment{Loss: 0.3}
			net := lab.Network{Request: imp}
			if dir == report.DirReply {
				net = lab.Network{Reply: imp}
			}
			if err := l.SetFaults(t.Context(), lab.Faults{Network: net}); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := l.SetFaults(context.Background(), lab.Faults{Wire: true}); err != nil {
					t.Error(err)
				}
			}()
			r := mergedRun(t, l, 60, nil)
			lost := 0
			for _, s := range r.Segments {
				if s.Class == report.ClassNetwork && s.Direction == dir {
					lost = s.Lost
				} else if s.Lost != 0 {
					t.Errorf("segment %s->%s (%s %s) lost %d, want 0: the loss is on the %s wire", s.From, s.To, s.Direction, s.Class, s.Lost, dir)
				}
			}
			if lost < 60/10 || lost > 60*6/10 {
				t.Errorf("the %s wire lost %d of 60, want about 30%%", dir, lost)
			}
			if len(r.Merge.Disagreements) != 0 {
				t.Errorf("disagreements %+v, want none", r.Merge.Disagreements)
			}
		})
	}
}

// TestPrivilegedMergeRemoteHalf delays node 2's forwarding of the
// requests, then its pod's receiving of them: the delay lands in that
// segment of node 2, not in the wire.
func TestPrivilegedMergeRemoteHalf(t *testing.T) {
	d := float64(mergeDelay.Microseconds())
	for _, tt := range []struct {
		name        string
		where       func(l *lab.Lab) (*lab.Pod, *lab.Node)
		chain       string
		class, from string // the segment that must hold the delay
	}{
		{"forward", func(l *lab.Lab) (*lab.Pod, *lab.Node) { return nil, l.Nodes[1] }, "FORWARD", report.ClassForwarding, "b1"},
		{"pod", func(l *lab.Lab) (*lab.Pod, *lab.Node) { return l.Nodes[1].Pod, nil }, "INPUT", report.ClassTarget, "b4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := labtest.New(t)
			const n = 40
			base := mergedRun(t, l, n, nil)
			pod, node := tt.where(l)
			if pod != nil {
				delayIn(t, l, pod.NS, pod.NSPath, tt.chain, mergeDelay)
			} else {
				delayIn(t, l, node.NS, node.NSPath, tt.chain, mergeDelay)
			}
			r := mergedRun(t, l, n, nil)
			found := false
			for i, s := range r.Segments {
				b := base.Segments[i]
				if s.US == nil || b.US == nil {
					continue
				}
				grew := s.US.P50 - b.US.P50
				switch {
				case s.Class == tt.class && s.From == tt.from && s.Direction == report.DirRequest:
					found = true
					if grew < 0.6*d || grew > 1.5*d {
						t.Errorf("segment %s->%s (%s) p50 grew %.1f us, want about %.0f", s.From, s.To, s.Class, grew, d)
					}
				case grew > 0.25*d:
					t.Errorf("segment %s->%s (%s %s) p50 grew %.1f us: the delay is in %s %s", s.From, s.To, s.Direction, s.Class, grew, tt.class, tt.from)
				}
			}
			if !found {
				t.Errorf("no timed %s segment from %s in the merged report", tt.class, tt.from)
			}
			if v := r.Verdict; v.Class != tt.class || v.From != tt.from {
				t.Errorf("verdict %q, want %s from %s", v.Text, tt.class, tt.from)
			}
			if grew := r.Merge.Request.P50 - base.Merge.Request.P50; grew > 0.25*d {
				t.Errorf("request wire p50 grew %.1f us: node 2's delay leaked into the wire", grew)
			}
		})
	}
}
