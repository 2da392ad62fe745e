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

// injectNetwork delays the requests between the nodes' uplinks by d (0:
// the delay line in place, adding only its own time).
func injectNetwork(ctx context.Context, l *lab.Lab, d time.Duration) (stopFunc, error) {
	f := lab.Faults{Wire: true, Network: lab.Network{Request: lab.Impairment{Delay: d}}}
	if err := l.SetFaults(ctx, f); err != nil {
		return nil, err
	}
	return func() (injectorLate, error) {
		var late injectorLate
		if s, ok := l.WireStats(); ok && s.Request.Forwarded > 0 {
			// The delay line keeps no median: its mean, which a stall moves.
			late = injectorLate{Typical: s.Request.MeanLate(), Max: s.Request.MaxLate}
		}
		return late, l.SetFaults(ctx, lab.Faults{Wire: true})
	}, nil
}
