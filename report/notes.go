package report

import (
	"encoding/json"
	"fmt"
	"strings"
)

// NoteKind says what a Note is about. Kinds are an open set: a reader of
// the JSON may meet kinds this version does not know, and the text report
// marks those as other.
type NoteKind string

// Kinds of notes, as they lead each note's line in the JSON.
const (
	NoteNotSeparable NoteKind = "not separable"          // the RX stamps at To were inherited
	NoteFewSamples   NoteKind = "few samples"            // fewer than MinSamples probes timed
	NoteCaptureDrops NoteKind = "capture drops"          // the capture at From or To dropped packets
	NoteSendClock    NoteKind = "send clock fallback"    // user-space send times in a round trip
	NoteReceiveClock NoteKind = "receive clock fallback" // user-space receive times in a round trip
)

// Note is one way a number of the report is weaker than it looks: its kind,
// for programs, and its text, for people. In JSON it is one string, the kind
// and the text joined by ": ", so readers can tell the kinds apart without
// parsing the prose.
type Note struct {
	Kind NoteKind
	Text string
}

// notef returns a note of kind k with the text formatted as by fmt.Sprintf.
func notef(k NoteKind, format string, args ...any) Note {
	return Note{Kind: k, Text: fmt.Sprintf(format, args...)}
}

// String returns the note as the JSON has it: "kind: text", or the text
// alone for a note without a kind.
func (n Note) String() string {
	if n.Kind == "" {
		return n.Text
	}
	return string(n.Kind) + ": " + n.Text
}

// MarshalJSON encodes the note as the string String returns.
func (n Note) MarshalJSON() ([]byte, error) { return json.Marshal(n.String()) }

// UnmarshalJSON decodes a note from its string: the kind is what precedes
// the first ": ". A string without one is a note of an empty kind, all
// text.
func (n *Note) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode note: %w", err)
	}
	kind, text, ok := strings.Cut(s, ": ")
	if !ok {
		kind, text = "", s
	}
	*n = Note{Kind: NoteKind(kind), Text: text}
	return nil
}

// MinSamples is the number of timed probes below which a segment gets a
// NoteFewSamples note: under 10, p90 and p99 are the maximum.
const MinSamples = 10

// noteSegments adds to every segment's notes (which hold the reason it is
// not separable, if it is not) those on where else it is weak: too few
// samples, captures that dropped packets at its ends.
func noteSegments(r *Result, spans []span) {
	for i := range r.Segments {
		s := &r.Segments[i]
		if sp := spans[i]; sp.separable && sp.samples < MinSamples {
			s.Notes = append(s.Notes, fewNote(sp.samples))
		}
		if p := r.point(s.From); p.Dropped() && s.From != s.To {
			s.Notes = append(s.Notes, dropNote(p, "start", "probes it missed are not in seen"))
		}
		if p := r.point(s.To); p.Dropped() {
			s.Notes = append(s.Notes, dropNote(p, "end", "probes it missed are not in seen, and unanswered ones missing there are unknown, not lost"))
		}
	}
}

func fewNote(n int) Note {
	if n == 0 {
		return Note{Kind: NoteFewSamples, Text: "no probe was timed here"}
	}
	return notef(NoteFewSamples, "%d %s timed (under %d), so p90 and p99 are the maximum", n, plural(n, "probe", "probes"), MinSamples)
}

func dropNote(p Point, end, effect string) Note {
	c := p.Capture
	return notef(NoteCaptureDrops, "the capture at %s, the segment's %s, dropped %d of %d packets (ring frozen %d times); %s",
		p.Name(), end, c.Drops, c.Packets, c.Freezes, effect)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
