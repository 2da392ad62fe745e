package report

import (
	"github.com/cnitrace/cnitrace/probe"
)

// probeTimelines describes every probe of lines.
func probeTimelines(lines []*timeline) []ProbeTimeline {
	out := make([]ProbeTimeline, 0, len(lines))
	for _, l := range lines {
		out = append(out, timelineOf(l))
	}
	return out
}

// timelineOf describes one probe: which clock each end of its round trip
// came from, and its capture stamps.
func timelineOf(l *timeline) ProbeTimeline {
	p := ProbeTimeline{
		Seq:          l.probe.Seq,
		Answered:     l.probe.Answered(),
		UserSent:     l.probe.SentAt,
		UserReceived: l.probe.ReceivedAt,
	}
	p.Sent, p.SendClock = l.probe.KernelSentAt()
	if first := l.at[0]; first.ok {
		p.First = first.time()
	}
	if last := l.at[len(l.at)-1]; last.ok {
		p.Last = last.time()
	}
	if p.Answered {
		p.Received, p.ReceiveClock = l.probe.ReceivedAt, RTTUser
		if rx := l.at[len(l.at)-1]; rx.ok {
			p.Received, p.ReceiveClock = rx.time(), RTTCapture
		}
	}
	return p
}

// roundTrips summarises the round trips t counted into r's RTT fields.
func roundTrips(r *Result, t *tally) {
	r.PathRTT = t.path.dist()
	n := t.rtt.count()
	if n == 0 {
		return
	}
	r.RTT, r.PingRTT, r.UserRTT = t.rtt.dist(), t.ping.dist(), t.user.dist()
	clocks := &Clocks{Send: t.sendClock, Receive: t.recvClock}
	r.RTTClocks = clocks
	r.RTTSource = rttSource(clocks)
	r.RTTNotes = clockNotes(clocks, n)
}

// rttSource says where the receive times came from: all from the capture,
// none, or some.
func rttSource(c *Clocks) string {
	switch {
	case c.Receive[RTTUser] == 0:
		return RTTCapture
	case c.Receive[RTTCapture] == 0:
		return RTTUser
	}
	return RTTMixed
}

// clockNotes says which round trips fell back to user-space times, out of
// n answered probes.
func clockNotes(c *Clocks, n int) []Note {
	var notes []Note
	if k := c.Send[probe.ClockUser]; k > 0 {
		notes = append(notes, notef(NoteSendClock, "%d of %d answered probes had no kernel TX stamp; %s send time is user space (just before sendto), so rtt_us includes the pod's send path for %s",
			k, n, plural(k, "its", "their"), plural(k, "it", "them")))
	}
	if k := c.Receive[RTTUser]; k > 0 {
		notes = append(notes, notef(NoteReceiveClock, "the capture on the pod's interface missed the reply of %d of %d answered probes; %s receive time is user space (after the read), so rtt_us and rtt_ping_us include the pod's receive path and scheduling for %s",
			k, n, plural(k, "its", "their"), plural(k, "it", "them")))
	}
	return notes
}
