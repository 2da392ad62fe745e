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

// newResult is the empty Result of a run of cfg, with room for every probe.
func newResult(cfg Config) *Result {
	return &Result{RunID: cfg.RunID, Target: cfg.Target.Unmap(), Size: cfg.Size, Probes: make([]Probe, 0, cfg.Count)}
}

// Probe is one echo request and, if it came, its reply.
type Probe struct {
	Seq        uint32
	SentAt     time.Time // user space, just before sendto
	ReceivedAt time.Time // user space, just after the reply was read; zero if none came
	// Kernel TX timestamps of the request from the socket's error queue
	// (SO_TIMESTAMPING, CLOCK_REALTIME like the capture stamps); zero when
	// the kernel gave none.
	SchedAt    time.Time // entering the device's queue (SCM_TSTAMP_SCHED)
	SoftwareAt time.Time // handed to the device driver (SCM_TSTAMP_SND)
	// SendErr is why the kernel refused to send the request (see Refused);
	// nil when sendto succeeded. A refused probe is never answered.
	SendErr error
}

// Clocks a probe's send time can come from.
const (
	ClockSched    = "kernel-sched"    // SCM_TSTAMP_SCHED
	ClockSoftware = "kernel-software" // SCM_TSTAMP_SND
	ClockUser     = "user"            // user space, just before sendto
)

// KernelSentAt returns the earliest send time the kernel reported and the
// clock it came from, or SentAt and ClockUser when it reported none.
func (p Probe) KernelSentAt() (time.Time, string) {
	switch {
	case !p.SchedAt.IsZero():
		return p.SchedAt, ClockSched
	case !p.SoftwareAt.IsZero():
		return p.SoftwareAt, ClockSoftware
	}
	return p.SentAt, ClockUser
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
