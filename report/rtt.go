package report

import (
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// probeTimelines describes every probe: which clock each end of its round
// trip came from, and its capture stamps.
func probeTimelines(lines []*timeline) []ProbeTimeline {
	out := make([]ProbeTimeline, 0, len(lines))
	for _, l := range lines {
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
		out = append(out, p)
	}
	return out
}

// roundTrips summarises the round trips of r.Timelines into r's RTT fields.
func roundTrips(r *Result) {
	var rtt, ping, path, user []time.Duration
	clocks := &Clocks{Send: map[string]int{}, Receive: map[string]int{}}
	for _, p := range r.Timelines {
		if d, ok := p.PathRTT(); ok {
			path = append(path, d)
		}
		if !p.Answered {
			continue
		}
		d, _ := p.RTT()
		pd, _ := p.PingRTT()
		ud, _ := p.UserRTT()
		rtt, ping, user = append(rtt, d), append(ping, pd), append(user, ud)
		clocks.Send[p.SendClock]++
		clocks.Receive[p.ReceiveClock]++
	}
	r.PathRTT = dist(path)
	if len(rtt) == 0 {
		return
	}
	r.RTT, r.PingRTT, r.UserRTT = dist(rtt), dist(ping), dist(user)
	r.RTTClocks = clocks
	r.RTTSource = rttSource(clocks)
	r.RTTNotes = clockNotes(clocks, len(rtt))
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
