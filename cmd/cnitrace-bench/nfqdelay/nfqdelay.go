// Package nfqdelay delays packets inside a node's forwarding path for the
// lab: an iptables rule hands matching packets to an NFQUEUE, and a Delayer
// gives each one its verdict (accept, or drop with a chosen probability)
// a fixed time after it arrived, in arrival order. This is how the lab puts
// a known delay between two interfaces of a node without netem, which this
// kernel lacks (design.md, kernel fact 6).
//
// The rule is the caller's, for example:
//
//	iptables -I FORWARD -i cni0 -o flannel.1 -p icmp -j NFQUEUE --queue-num 7 --queue-bypass
//
// --queue-bypass lets packets through when no Delayer listens.
//
// It speaks nfnetlink_queue directly over a netlink socket from
// golang.org/x/sys/unix: the protocol needs four message shapes, and the
// usual Go client (florianl/go-nfqueue) is not reachable here.
package nfqdelay

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cnitrace/cnitrace/probe"
)

// Config says how to treat queued packets.
type Config struct {
	Queue uint16        // the NFQUEUE number of the iptables rule
	Delay time.Duration // how long each packet is held
	Loss  float64       // probability, 0 to 1, that a packet is dropped instead
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	switch {
	case c.Delay < 0 || c.Delay > 10*time.Second:
		return fmt.Errorf("delay %s: must be between 0 and 10s", c.Delay)
	case c.Loss < 0 || c.Loss > 1:
		return fmt.Errorf("loss %g: must be between 0 and 1", c.Loss)
	}
	return nil
}

// Stats counts what a Delayer did.
type Stats struct {
	Accepted, Dropped uint64
	// MaxLate is by how much verdicts were sent after their release time
	// (arrival in user space plus the delay), at most: the releaser's own
	// error. It leaves out the queue's round trip through the kernel,
	// which an independent observer (ping) sees.
	MaxLate time.Duration
	// MedianLate is the median of the first lateSamples verdicts' lateness:
	// unlike the mean, one stall of the machine does not move it.
	MedianLate time.Duration
	// Holds are the accepted packets that carried a cnitrace probe, with
	// how long each was held (the first MaxHolds): the delay that probe
	// was given, for comparing a trace with probe by probe.
	Holds []Hold
}

// Hold is how long the Delayer held one cnitrace probe's packet: from
// when it read the packet from the queue to just before it sent the
// verdict, on one clock (CLOCK_REALTIME, which cnitrace's capture stamps
// use too). The queue's round trip through the kernel (to user space
// and back) is not in it; it is there, about the same, with no delay.
type Hold struct {
	Token probe.Token
	Reply bool // an echo reply (else a request)
	Hold  time.Duration
	// SinceStamp is the time from the packet's skb stamp, which the
	// kernel hands over with it when the skb has one (to the us), to the
	// verdict: the hold plus the queue's way to user space. 0 when the
	// skb had no stamp.
	SinceStamp time.Duration
}

// MaxHolds bounds the holds a Delayer keeps.
const MaxHolds = 8192

// probeToken reads a probe's token from the start of an IPv4 packet: an
// ICMP echo request or reply whose data opens with probe.Magic.
func probeToken(p []byte) (t probe.Token, reply, ok bool) {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != 1 { // IPv4, ICMP
		return t, false, false
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || len(p) < ihl+8 {
		return t, false, false
	}
	m := p[ihl:]
	if (m[0] != 8 && m[0] != 0) || m[1] != 0 { // echo request or reply
		return t, false, false
	}
	tok, err := probe.ParseToken(m[8:])
	if err != nil {
		return t, false, false
	}
	return tok, m[0] == 0, true
}

// lateSamples bounds the lateness kept for MedianLate.
const lateSamples = 4096

// ErrNotSupported is returned on systems without netfilter queues.
var ErrNotSupported = errors.New("netfilter queues are not supported")

// spinFor is how long before a release time the releaser stops sleeping and
// spins: time.Sleep overshoots by 0.2-0.5 ms here (design.md), spinning the
// last stretch lands within microseconds.
const spinFor = time.Millisecond

// waitUntil returns at t, sleeping most of the way and spinning the rest.
func waitUntil(t time.Time) {
	if d := time.Until(t) - spinFor; d > 0 {
		time.Sleep(d)
	}
	for time.Now().Before(t) {
	}
}

// medianOf returns the median of d (0 when empty), sorting a copy.
func medianOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
