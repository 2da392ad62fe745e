package probe

import "time"

// stampGrace is how long a run waits, once every probe is answered or the
// reply timeout has passed, for TX timestamps still on their way. The
// SCHED stamp is taken before any qdisc, so it is queued before sendto
// returns, unless the packet first waits for its neighbour to resolve.
const stampGrace = 20 * time.Millisecond

// txStamp is one kernel TX timestamp read from a socket's error queue.
type txStamp struct {
	key uint32    // SOF_TIMESTAMPING_OPT_ID: the packet's number on its socket, from 0
	at  time.Time // CLOCK_REALTIME
}

// addStamp records s on p, keeping the first SCHED stamp (a packet
// crossing stacked devices in the sender's netns can be stamped at each
// device's queue). It refuses a stamp earlier than p.SentAt: the kernel
// stamps inside sendto, after SentAt was read from the same clock, so such
// a stamp belongs to another packet and the key mapping is off.
func (p *Probe) addStamp(s txStamp) bool {
	if s.at.Before(p.SentAt) || !p.SchedAt.IsZero() {
		return false
	}
	p.SchedAt = s.at
	return true
}

// stamped reports whether p carries its TX timestamp.
func (p *Probe) stamped() bool { return !p.SchedAt.IsZero() }
