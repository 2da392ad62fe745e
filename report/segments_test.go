package report

import (
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/topology"
)

// TestInheritedStamps checks kernel fact 1: veth RX -> bridge RX on the
// request and uplink RX -> vxlan RX on the reply carry one skb stamp.
func TestInheritedStamps(t *testing.T) {
	d := designDelays()
	r := run{n: 10, delays: d, inherit: map[int]bool{segVethBridge: true, segUplinkVXLAN: true}}.correlate(t)
	for _, i := range []int{segVethBridge, segUplinkVXLAN} {
		s := r.Segments[i]
		if s.Separable || s.US != nil || s.Seen != 10 {
			t.Errorf("segment %d: got separable=%v us=%+v seen=%d, want false, none, 10", i, s.Separable, s.US, s.Seen)
		}
		if !strings.Contains(s.Note, "inherited") || !strings.Contains(s.Note, "merged into the next") {
			t.Errorf("segment %d: got note %q, want it to explain the inherited stamp and the merge", i, s.Note)
		}
	}
	tests := []struct {
		seg        int
		mergedFrom string
		p50        float64
	}{
		{segBridgeVXLAN, "p1", micros(d[segBridgeVXLAN])}, // the inherited span took no time
		{segVXLANBridge, "p4", micros(d[segVXLANBridge])},
	}
	for _, tt := range tests {
		s := r.Segments[tt.seg]
		if s.MergedFrom != tt.mergedFrom || s.US == nil || s.US.P50 != tt.p50 {
			t.Errorf("segment %d: got merged_from %q us %+v, want %q p50 %.1f", tt.seg, s.MergedFrom, s.US, tt.mergedFrom, tt.p50)
		}
	}
	for _, i := range []int{segEgress, segVXLANUplink, segNetwork, segBridgeVeth, segIngress} {
		if s := r.Segments[i]; s.MergedFrom != "" || s.US == nil || s.US.P50 != micros(d[i]) {
			t.Errorf("segment %d: got merged_from %q us %+v, want unmerged p50 %.1f", i, s.MergedFrom, s.US, micros(d[i]))
		}
	}
}

// TestInheritedMergedSpan shows the merged segment is measured from the start
// of the chain, not from its own start: one of two samples at cni0 carries a
// fresh stamp 1 us after veth RX, which must not shorten bridge -> vxlan.
func TestInheritedMergedSpan(t *testing.T) {
	d := designDelays()
	res, obs := run{n: 2, delays: d, inherit: map[int]bool{segVethBridge: true}}.build()
	for i, o := range obs {
		if o.Point == "p2" && o.IsRequest() && seqOf(o) == 0 {
			obs[i].At = o.At.Add(time.Microsecond)
		}
	}
	r, err := replay(flannelPath(), res, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Segments[segVethBridge]; s.Separable {
		t.Errorf("got veth -> bridge separable with 1 of 2 samples inherited, want not separable")
	}
	want := micros(d[segBridgeVXLAN])
	if s := r.Segments[segBridgeVXLAN]; s.US == nil || s.US.P50 != want || s.US.Max != want || s.MergedFrom != "p1" {
		t.Errorf("got %+v us %+v, want p50 and max %.1f merged from p1", s, s.US, want)
	}
}

func TestInheritedChainAndEnd(t *testing.T) {
	// p0 pod tx, p1 veth rx, p2 bridge rx, p3 another stacked rx, p4 uplink tx:
	// segments 1 and 2 both inherit, so segment 3 is measured from p1.
	path := flannelPath()
	path.Points[3].Kind, path.Points[3].RequestDir = topology.KindOther, topology.RX
	d := designDelays()
	r := run{path: path, n: 6, delays: d, inherit: map[int]bool{1: true, 2: true, 8: true}}.correlate(t)
	for _, i := range []int{1, 2, 8} {
		if s := r.Segments[i]; s.Separable || s.US != nil {
			t.Errorf("segment %d: got separable=%v us=%+v, want not separable, no us", i, s.Separable, s.US)
		}
	}
	if s := r.Segments[3]; s.MergedFrom != "p1" || s.US == nil || s.US.P50 != micros(d[3]) {
		t.Errorf("segment 3: got merged_from %q us %+v, want p1 p50 %.1f", s.MergedFrom, s.US, micros(d[3]))
	}
	if s := r.Segments[2]; s.MergedFrom != "" {
		t.Errorf("segment 2: got merged_from %q, want none on a non-separable segment", s.MergedFrom)
	}
	if s := r.Segments[8]; !strings.Contains(s.Note, "end of the path") {
		t.Errorf("last segment: got note %q, want it to say it is at the end of the path", s.Note)
	}
}

// TestInheritedHalf: a segment is not separable when at least half of its
// samples are inherited.
func TestInheritedHalf(t *testing.T) {
	tests := []struct {
		name      string
		fresh     []int // seqs that get a fresh stamp at the end of segment 1
		separable bool
	}{
		{"all inherited", nil, false},
		{"half inherited", []int{0, 1, 2}, false},
		{"under half inherited", []int{0, 1, 2, 3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, obs := run{n: 6, delays: designDelays(), inherit: map[int]bool{segVethBridge: true}}.build()
			for i, o := range obs {
				for _, seq := range tt.fresh {
					if o.Point == "p2" && o.IsRequest() && seqOf(o) == uint32(seq) {
						obs[i].At = o.At.Add(time.Microsecond)
					}
				}
			}
			r, err := replay(flannelPath(), res, &capture.Capture{Observations: obs})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Segments[segVethBridge].Separable; got != tt.separable {
				t.Errorf("got separable %v, want %v", got, tt.separable)
			}
		})
	}
}

// TestInheritedMinorityLeftOut: in a segment that is separable (fewer
// than half of its stamps inherited), the probes whose stamp at its end
// was inherited are left out of its times, and out of the next segment's,
// whose start stamp they would take from the step before: their times
// would be nothing in the one and take in both in the other. They still
// count as seen. (A run whose probes got inherited stamps at the bridge
// for some of its probes reported a mixed median there.)
func TestInheritedMinorityLeftOut(t *testing.T) {
	d := designDelays()
	res, obs := run{n: 6, delays: d, inherit: map[int]bool{segVethBridge: true}}.build()
	for i, o := range obs {
		if o.Point == "p2" && o.IsRequest() && seqOf(o) < 4 { // fresh stamps at the bridge, 1 us after veth RX
			obs[i].At = o.At.Add(time.Microsecond)
		}
	}
	r, err := replay(flannelPath(), res, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}
	vb, bx := r.Segments[segVethBridge], r.Segments[segBridgeVXLAN]
	if !vb.Separable || vb.US == nil || vb.US.Min != 1 || vb.US.Max != 1 || vb.Seen != 6 {
		t.Errorf("veth -> bridge: got separable %v, us %+v, seen %d; want separable, every time 1 us (the 4 fresh probes), 6 seen", vb.Separable, vb.US, vb.Seen)
	}
	if want := micros(d[segBridgeVXLAN]) - 1; bx.US == nil || bx.US.Min != want || bx.US.Max != want || bx.Seen != 6 || bx.MergedFrom != "" {
		t.Errorf("bridge -> vxlan: got us %+v, seen %d, merged from %q; want every time %.1f us (the fresh probes), 6 seen, not merged", bx.US, bx.Seen, bx.MergedFrom, want)
	}
}

// TestInheritedOnlyOnRXSKB: equal times are not inherited on TX or with a
// copy stamp.
func TestInheritedOnlyOnRXSKB(t *testing.T) {
	res, obs := run{n: 3, delays: designDelays(), inherit: map[int]bool{segVethBridge: true}}.build()
	for i := range obs {
		if obs[i].Point == "p2" {
			obs[i].Stamp = capture.StampCopy
		}
	}
	r, err := replay(flannelPath(), res, &capture.Capture{Observations: obs})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Segments[segVethBridge]; !s.Separable || s.US == nil || s.US.P50 != 0 {
		t.Errorf("got %+v, want separable with p50 0", s)
	}
}
