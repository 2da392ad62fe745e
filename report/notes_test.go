package report

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/probe"
)

// kinds returns the kind of every note.
func kinds(notes []Note) []NoteKind {
	var k []NoteKind
	for _, n := range notes {
		k = append(k, n.Kind)
	}
	return k
}

// lines returns every note as the JSON has it.
func lines(notes []Note) []string {
	var l []string
	for _, n := range notes {
		l = append(l, n.String())
	}
	return l
}

func TestSegmentNotes(t *testing.T) {
	few, drops, insep := NoteFewSamples, NoteCaptureDrops, NoteNotSeparable
	tests := []struct {
		name string
		rn   run
		want map[int][]NoteKind // segment -> note kinds; others none
	}{
		{"10 samples: none", run{n: 10}, nil},
		{"9 samples: every segment", run{n: 9}, map[int][]NoteKind{
			0: {few}, 1: {few}, 2: {few}, 3: {few}, 4: {few}, 5: {few}, 6: {few}, 7: {few}, 8: {few}}},
		{"a merged segment counts the probes timed over its span", run{n: 12, inherit: map[int]bool{segVethBridge: true},
			missing: map[[2]int]bool{{0, 1}: true, {1, 1}: true, {2, 1}: true}},
			// p1 missed 3 requests: egress and the merged span from p1 have 9 samples.
			map[int][]NoteKind{segEgress: {few}, segVethBridge: {insep}, segBridgeVXLAN: {few}}},
		{"drops at flannel.1: both segments at each of its crossings", run{n: 10, stats: []capture.PointStats{{Point: "p3", Packets: 20, Drops: 1}}},
			map[int][]NoteKind{segBridgeVXLAN: {drops}, segVXLANUplink: {drops}, segUplinkVXLAN: {drops}, segVXLANBridge: {drops}}},
		{"freezes at the uplink: one note on the network segment", run{n: 10, stats: []capture.PointStats{{Point: "p4", Freezes: 2}}},
			map[int][]NoteKind{segVXLANUplink: {drops}, segNetwork: {drops}, segUplinkVXLAN: {drops}}},
		{"no drops, counters only", run{n: 10, stats: []capture.PointStats{{Point: "p3", Packets: 20, Undecodable: 1}}}, nil},
		{"all kinds", run{n: 3, inherit: map[int]bool{segUplinkVXLAN: true}, stats: []capture.PointStats{{Point: "p3", Drops: 1}}},
			map[int][]NoteKind{0: {few}, 1: {few}, 2: {few, drops}, 3: {few, drops}, 4: {few}, 5: {insep, drops}, 6: {few, drops}, 7: {few}, 8: {few}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rn.delays = designDelays()
			r := tt.rn.correlate(t)
			for i, s := range r.Segments {
				if got := kinds(s.Notes); !slices.Equal(got, tt.want[i]) {
					t.Errorf("segment %d (%s->%s %s): got notes %q, want kinds %q", i, s.From, s.To, s.Direction, s.Notes, tt.want[i])
				}
				if s.Note != "" && (len(s.Notes) == 0 || s.Notes[0].String() != s.Note) {
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
		if got := lines(r.Segments[i].Notes); !slices.Equal(got, w) {
			t.Errorf("segment %d: got notes\n%q\nwant\n%q", i, got, w)
		}
	}
	empty, err := replay(flannelPath(), &probe.Result{RunID: testRun}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lines(empty.Segments[0].Notes), []string{"few samples: no probe was timed here"}; !slices.Equal(got, want) {
		t.Errorf("no probes: got notes %q, want %q", got, want)
	}
}

func TestRenderNoteMarks(t *testing.T) {
	tests := []struct {
		notes []Note
		want  string
	}{
		{nil, ""},
		{[]Note{{NoteCaptureDrops, "x"}, {NoteNotSeparable, "y"}}, "id"},
		{[]Note{{NoteFewSamples, "x"}, {NoteCaptureDrops, "y"}, {NoteCaptureDrops, "z"}}, "nd"},
		{[]Note{{"something new", "x"}, {NoteNotSeparable, "y"}, {"another", "z"}}, "io"},
		{[]Note{{"few samplesX", ""}}, "o"},
		// The kind decides, never the text.
		{[]Note{{"", "few samples: x"}}, "o"},
		{[]Note{{NoteSendClock, "x"}}, "o"},
	}
	for _, tt := range tests {
		if got := marks(tt.notes); got != tt.want {
			t.Errorf("marks(%q): got %q, want %q", tt.notes, got, tt.want)
		}
	}
	r := flannelResult(t)
	r.Segments[0].Notes = []Note{{NoteFewSamples, "3 probes timed"}, {"future kind", "x"}}
	var b bytes.Buffer
	if err := Render(&b, r, FormatText); err != nil {
		t.Fatal(err)
	}
	want := "  notes: i not separable (inherited RX stamp); n under 10 samples (p90, p99 = max); d capture dropped packets at an end; o other (see the JSON notes)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("got:\n%s\nwant the legend %q", b.String(), want)
	}
}

// TestNoteJSON: a note is one "kind: text" string in JSON, and decodes
// back to its kind and text; a report decoded from JSON renders the same
// bytes again.
func TestNoteJSON(t *testing.T) {
	tests := []struct {
		note Note
		json string
	}{
		{Note{NoteCaptureDrops, "the capture at p3 dropped 1 of 2 packets"}, `"capture drops: the capture at p3 dropped 1 of 2 packets"`},
		{Note{NoteNotSeparable, "a: b <c>"}, `"not separable: a: b \u003cc\u003e"`},
		{Note{"", "no kind"}, `"no kind"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.note)
		if err != nil || string(b) != tt.json {
			t.Errorf("json.Marshal(%#v): got %s, %v, want %s", tt.note, b, err, tt.json)
		}
		var back Note
		if err := json.Unmarshal(b, &back); err != nil || back != tt.note {
			t.Errorf("json.Unmarshal(%s): got %#v, %v, want %#v", b, back, err, tt.note)
		}
	}
	if err := json.Unmarshal([]byte(`{"kind": 1}`), new(Note)); err == nil {
		t.Error("json.Unmarshal of an object into a Note: got no error, want one")
	}

	want, err := os.ReadFile("../testdata/report-flannel.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(want, &r); err != nil {
		t.Fatal(err)
	}
	if got := r.Segments[1].Notes; len(got) == 0 || got[0].Kind != NoteNotSeparable {
		t.Errorf("got segment 1 notes %#v, want a %q note first", got, NoteNotSeparable)
	}
	var b bytes.Buffer
	if err := Render(&b, &r, FormatJSON); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("decoded and rendered again, the golden JSON changed:\n%s", b.Bytes())
	}
}
