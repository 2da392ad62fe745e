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
