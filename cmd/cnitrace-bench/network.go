//go:build linux

package main

import (
	"context"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// prepareNetwork puts the wire between the nodes with no delay, so the
// baseline includes the delay line's own cost and only D is measured.
func prepareNetwork(ctx context.Context, l *lab.Lab) (func() error, error) {
	if err := l.SetFaults(ctx, lab.Faults{Wire: true}); err != nil {
		return nil, err
	}
	return func() error { return l.SetFaults(ctx, lab.Faults{}) }, nil
}

// wireHolds is what the delay line held of each probe: its request's hold
// plus its reply's, for the probes it forwarded both ways. The network
// segment runs from the request leaving node 1 to the reply coming back,
// so both lanes' holds are in it: the delay D on the request lane, and,
// at D and at 0 alike, each lane's wake-up, which varies by tens of us.
func wireHolds(s lab.WireStats, d time.Duration) injectorLate {
	late := injectorLate{Max: s.Request.MaxLate, Holds: map[probeKey]float64{}}
	req := map[probeKey]time.Duration{}
	var lates []float64
	for _, h := range s.Request.Holds {
		if !h.Reply {
			req[probeKey{h.RunID, h.Seq}] = h.Hold
			lates = append(lates, us(h.Hold-d))
		}
	}
	for _, h := range s.Reply.Holds {
		if r, ok := req[probeKey{h.RunID, h.Seq}]; ok && h.Reply {
			late.Holds[probeKey{h.RunID, h.Seq}] = us(r + h.Hold)
		}
	}
	late.Typical = time.Duration(median(lates) * 1000)
	return late
}

// injectNetwork delays the requests between the nodes' uplinks by d (0:
// the delay line in place, adding only its own time).
func injectNetwork(ctx context.Context, l *lab.Lab, d time.Duration) (stopFunc, error) {
	f := lab.Faults{Wire: true, Network: lab.Network{Request: lab.Impairment{Delay: d}}}
	if err := l.SetFaults(ctx, f); err != nil {
		return nil, err
	}
	return func() (injectorLate, error) {
		var late injectorLate
		if s, ok := l.WireStats(); ok {
			late = wireHolds(s, d)
		}
		return late, l.SetFaults(ctx, lab.Faults{Wire: true})
	}, nil
}
