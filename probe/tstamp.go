package probe

import (
	"context"
	"net/netip"
	"time"
)

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

// inbox is where a receiver hands what it read to the collector.
type inbox struct {
	replies chan<- reply
	stamps  chan<- txStamp
}

// txStamper is a socket whose kernel reports TX timestamps of what it sends
// (Listen's socket, on Linux). Run sends and receives through it instead of
// WriteTo and ReadFrom, so every probe can be matched with its stamps.
type txStamper interface {
	// sendKeyed sends b to dst like writeTimed and also returns the OPT_ID
	// key the kernel gives the packet's timestamps.
	sendKeyed(b []byte, dst netip.Addr, now func() time.Time) (sentAt time.Time, key uint32, err error)
	// receive passes this run's echo replies and every TX timestamp to in
	// until ctx is done. It is the socket's only reader.
	receive(ctx context.Context, cfg Config, in inbox) error
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
