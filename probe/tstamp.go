package probe

import "time"

// stampGrace is how long a run waits, once every probe is answered or the
// reply timeout has passed, for TX timestamps still on their way. On a veth
// both stamps are queued before sendto returns; a real qdisc or driver may
// take longer.
const stampGrace = 20 * time.Millisecond

// stampKind says which point of the send path a TX timestamp marks. The
// values are the kernel's ee_info values (SCM_TSTAMP_*, linux/errqueue.h).
type stampKind uint32

const (
	stampSoftware stampKind = 0 // SCM_TSTAMP_SND: handed to the device driver
	stampSched    stampKind = 1 // SCM_TSTAMP_SCHED: entering the device's queue
)

// txStamp is one kernel TX timestamp read from a socket's error queue.
type txStamp struct {
	key  uint32 // SOF_TIMESTAMPING_OPT_ID: the packet's number on its socket, from 0
	kind stampKind
	at   time.Time // CLOCK_REALTIME
}

// addStamp records s on p, keeping the first stamp of each kind (a packet
// crossing stacked devices in the sender's netns can be stamped more than
// once). It refuses a stamp earlier than p.SentAt: the kernel stamps inside
// sendto, after SentAt was read from the same clock, so such a stamp belongs
// to another packet and the key mapping is off.
func (p *Probe) addStamp(s txStamp) bool {
	if s.at.Before(p.SentAt) {
		return false
	}
	field := &p.SoftwareAt
	switch s.kind {
	case stampSoftware:
	case stampSched:
		field = &p.SchedAt
	default:
		return false
	}
	if !field.IsZero() {
		return false
	}
	*field = s.at
	return true
}

// stamped reports whether p carries both TX timestamps.
func (p *Probe) stamped() bool { return !p.SchedAt.IsZero() && !p.SoftwareAt.IsZero() }
