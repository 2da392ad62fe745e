package report

import "fmt"

// Kinds of notes. Every line of Segment.Notes and Result.RTTNotes starts
// with one of these and ": ", so readers can tell the kinds apart without
// parsing the prose.
const (
	NoteNotSeparable = "not separable"          // the RX stamps at To were inherited
	NoteFewSamples   = "few samples"            // fewer than MinSamples probes timed
	NoteCaptureDrops = "capture drops"          // the capture at From or To dropped packets
	NoteSendClock    = "send clock fallback"    // user-space send times in rtt_us
	NoteReceiveClock = "receive clock fallback" // user-space receive times in rtt_us
)

// MinSamples is the number of timed probes below which a segment gets a
// NoteFewSamples note: under 10, p90 and p99 are the maximum.
const MinSamples = 10

// noteSegments gives every segment the notes on where it is weak: not
// separable, too few samples, captures that dropped packets at its ends.
func noteSegments(r *Result, spans []span) {
	for i := range r.Segments {
		s := &r.Segments[i]
		var notes []string
		if s.Note != "" {
			notes = append(notes, s.Note)
		}
		if sp := spans[i]; sp.separable && sp.samples < MinSamples {
			notes = append(notes, fewNote(sp.samples))
		}
		if p := r.point(s.From); p.Dropped() && s.From != s.To {
			notes = append(notes, dropNote(p, "start", "probes it missed are not in seen"))
		}
		if p := r.point(s.To); p.Dropped() {
			notes = append(notes, dropNote(p, "end", "probes it missed are not in seen, and unanswered ones missing there are unknown, not lost"))
		}
		s.Notes = notes
	}
}

func fewNote(n int) string {
	if n == 0 {
		return NoteFewSamples + ": no probe was timed here"
	}
	return fmt.Sprintf("%s: %d %s timed (under %d), so p90 and p99 are the maximum", NoteFewSamples, n, plural(n, "probe", "probes"), MinSamples)
}

func dropNote(p Point, end, effect string) string {
	c := p.Capture
	return fmt.Sprintf("%s: the capture at %s, the segment's %s, dropped %d of %d packets (ring frozen %d times); %s",
		NoteCaptureDrops, p.Name(), end, c.Drops, c.Packets, c.Freezes, effect)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
