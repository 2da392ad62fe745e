package probe

import (
	"net/netip"
	"time"
)

// Result is what one run of probes recorded. Times are user-space
// CLOCK_REALTIME readings around the syscalls; the kernel's capture stamps,
// which report prefers, come from package capture.
type Result struct {
	RunID  uint64
	Target netip.Addr
	Size   int     // payload bytes per probe
	Probes []Probe // one per probe sent, in sequence order
}

// Probe is one echo request and, if it came, its reply.
type Probe struct {
	Seq        uint32
	SentAt     time.Time // just before sendto
	ReceivedAt time.Time // just after the reply was read; zero if none came
}

// Answered reports whether a reply was read for the probe.
func (p Probe) Answered() bool { return !p.ReceivedAt.IsZero() }

// RTT returns the user-space round trip, or 0 when unanswered.
func (p Probe) RTT() time.Duration {
	if !p.Answered() {
		return 0
	}
	return p.ReceivedAt.Sub(p.SentAt)
}
