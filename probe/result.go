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
	Size   int // payload bytes per probe
	// Probes holds every probe, in sequence order, when the run had no
	// Config.Sink; with a Sink it stays empty: the probes went there.
	Probes []Probe
	// Sent and Answered count the probes sent and those whose reply was
	// read in time, Sink or not.
	Sent, Answered int
	// LateReplies counts the echo replies of this run the socket read
	// after their probe's Deadline: late replies, and duplicates of replies
	// to probes already handed over. They answer nothing.
	LateReplies int
	// SocketDrops is how many packets the probe socket's receive queue
	// dropped during the run because it was full (the kernel's sk_drops,
	// read with SO_MEMINFO): replies, of this run or of another
	// cnitrace run in the same netns (the socket filter keeps out every
	// other echo reply), that cnitrace never read. Zero also when the
	// kernel cannot tell (before Linux 4.12).
	SocketDrops uint64
}

// newResult is the empty Result of a run of cfg. Nothing in it is sized
// by cfg.Count.
func newResult(cfg Config) *Result {
	return &Result{RunID: cfg.RunID, Target: cfg.Target.Unmap(), Size: cfg.Size}
}

// Probe is one request (an echo request, a TCP SYN or a UDP datagram) and,
// if it came, its reply.
type Probe struct {
	Seq        uint32
	SrcPort    uint16    // the source port the request left from: TCP and UDP; 0 for ICMP echo
	SentAt     time.Time // user space, just before sendto
	ReceivedAt time.Time // user space, just after the reply was read; zero if none came
	// Reply says what answered the probe (NoReply when nothing did in
	// time), ReplyFrom who sent it (the target, or whoever sent an ICMP
	// error) and ReplyCode, for Unreachable and DNSReply, its ICMP code or
	// DNS RCODE.
	Reply     Reply
	ReplyFrom netip.Addr
	ReplyCode uint8
	// SchedAt is the kernel's TX timestamp of the request entering the
	// pod interface's device queue (SCM_TSTAMP_SCHED from the socket's
	// error queue, CLOCK_REALTIME like the capture stamps); zero when the
	// kernel gave none.
	SchedAt time.Time
	// SendErr is why the kernel refused to send the request (see Refused);
	// nil when sendto succeeded. A refused probe is never answered.
	SendErr error
	// Deadline is when the run stopped waiting for the reply, in the
	// clock of SentAt: SentAt + Config.Timeout, or the moment the run
	// stopped if that came first (SentAt for a refused probe). A reply
	// that reaches the source interface after it is late, not lost; a
	// reply read after it does not answer the probe.
	Deadline time.Time
}

// Clocks a probe's send time can come from.
const (
	ClockSched = "kernel-sched" // SCM_TSTAMP_SCHED
	ClockUser  = "user"         // user space, just before sendto
)

// KernelSentAt returns the send time the kernel reported and the clock it
// came from, or SentAt and ClockUser when it reported none.
func (p Probe) KernelSentAt() (time.Time, string) {
	if !p.SchedAt.IsZero() {
		return p.SchedAt, ClockSched
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
