package report

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// kinds returns the kind of every note: the text before the first ": ".
func kinds(notes []string) []string {
	var k []string
	for _, n := range notes {
		kind, _, _ := strings.Cut(n, ": ")
		k = append(k, kind)
	}
	return k
}

func TestSegmentNotes(t *testing.T) {
	few, drops, insep := NoteFewSamples, NoteCaptureDrops, NoteNotSeparable
	tests := []struct {
		name string
		rn   run
		want map[int][]string // segment -> note kinds; others none
	}{
		{"10 samples: none", run{n: 10}, nil},
		{"9 samples: every segment", run{n: 9}, map[int][]string{
			0: {few}, 1: {few}, 2: {few}, 3: {few}, 4: {few}, 5: {few}, 6: {few}, 7: {few}, 8: {few}}},
		{"a merged segment counts the probes timed over its span", run{n: 12, inherit: map[int]bool{segVethBridge: true},
			missing: map[[2]int]bool{{0, 1}: true, {1, 1}: true, {2, 1}: true}},
			// p1 missed 3 requests: egress and the merged span from p1 have 9 samples.
			map[int][]string{segEgress: {few}, segVethBridge: {insep}, segBridgeVXLAN: {few}}},
		{"drops at flannel.1: both segments at each of its crossings", run{n: 10, stats: []capture.PointStats{{Point: "p3", Packets: 20, Drops: 1}}},
			map[int][]string{segBridgeVXLAN: {drops}, segVXLANUplink: {drops}, segUplinkVXLAN: {drops}, segVXLANBridge: {drops}}},
		{"freezes at the uplink: one note on the network segment", run{n: 10, stats: []capture.PointStats{{Point: "p4", Freezes: 2}}},
			map[int][]string{segVXLANUplink: {drops}, segNetwork: {drops}, segUplinkVXLAN: {drops}}},
		{"no drops, counters only", run{n: 10, stats: []capture.PointStats{{Point: "p3", Packets: 20, Undecodable: 1}}}, nil},
		{"all kinds", run{n: 3, inherit: map[int]bool{segUplinkVXLAN: true}, stats: []capture.PointStats{{Point: "p3", Drops: 1}}},
			map[int][]string{0: {few}, 1: {few}, 2: {few, drops}, 3: {few, drops}, 4: {few}, 5: {insep, drops}, 6: {few, drops}, 7: {few}, 8: {few}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rn.delays = designDelays()
			r := tt.rn.correlate(t)
			for i, s := range r.Segments {
				if got := kinds(s.Notes); !slices.Equal(got, tt.want[i]) {
					t.Errorf("segment %d (%s->%s %s): got notes %q, want kinds %q", i, s.From, s.To, s.Direction, s.Notes, tt.want[i])
				}
				if s.Note != "" && (len(s.Notes) == 0 || s.Notes[0] != s.Note) {
					t.Errorf("segment %d: got note %q and notes %q, want the note repeated first", i, s.Note, s.Notes)
				}
			}
		})
	}
}

func TestSegmentNoteText(t *testing.T) {
	r := run{n: 4, delays: designDelays(), stats: []capture.PointStats{{Point: "p3", Packets: 20, Drops: 2, Freezes: 1}}}.correlate(t)
	want := map[int][]string{
		segBridgeVXLAN: {
			"few samples: 4 probes timed (under 10), so p90 and p99 are the maximum",
			"capture drops: the capture at flannel.1@net:[4026531840], the segment's end, dropped 2 of 20 packets (ring frozen 1 times); probes it missed are not in seen, and unanswered ones missing there are unknown, not lost",
		},
		segVXLANUplink: {
			"few samples: 4 probes timed (under 10), so p90 and p99 are the maximum",
			"capture drops: the capture at flannel.1@net:[4026531840], the segment's start, dropped 2 of 20 packets (ring frozen 1 times); probes it missed are not in seen",
		},
	}
	for i, w := range want {
		if got := r.Segments[i].Notes; !slices.Equal(got, w) {
			t.Errorf("segment %d: got notes\n%q\nwant\n%q", i, got, w)
		}
	}
	empty, err := Correlate(flannelPath(), &probe.Result{RunID: testRun}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := empty.Segments[0].Notes, []string{"few samples: no probe was timed here"}; !slices.Equal(got, want) {
		t.Errorf("no probes: got notes %q, want %q", got, want)
	}
}

func TestRenderNoteMarks(t *testing.T) {
	tests := []struct {
		notes []string
		want  string
	}{
		{nil, ""},
		{[]string{"capture drops: x", "not separable: y"}, "id"},
		{[]string{"few samples: x", "capture drops: y", "capture drops: z"}, "nd"},
		{[]string{"something new: x", "not separable: y", "another: z"}, "io"},
		{[]string{"few samplesX"}, "o"},
	}
	for _, tt := range tests {
		if got := marks(tt.notes); got != tt.want {
			t.Errorf("marks(%q): got %q, want %q", tt.notes, got, tt.want)
		}
	}
	r := flannelResult(t)
	r.Segments[0].Notes = []string{"few samples: 3 probes timed", "future kind: x"}
	var b bytes.Buffer
	if err := Render(&b, r, FormatText); err != nil {
		t.Fatal(err)
	}
	want := "  notes: i not separable (inherited RX stamp); n under 10 samples (p90, p99 = max); d capture dropped packets at an end; o other (see the JSON notes)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("got:\n%s\nwant the legend %q", b.String(), want)
	}
}
