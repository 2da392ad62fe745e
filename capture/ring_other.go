//go:build !linux

package capture

import (
	"fmt"
	"runtime"

	"github.com/cnitrace/cnitrace/topology"
)

// ring stands in for the Linux TPACKET_V3 ring; it cannot be opened here.
type ring struct{ link LinkType }

func unsupported(what string) error {
	return fmt.Errorf("%s: %w on %s", what, ErrNotSupported, runtime.GOOS)
}

func openRingIn(ns *topology.NetNS, pt topology.Point, f filters, g geometry) (*ring, error) {
	return nil, unsupported("open capture on " + pt.Name())
}

func (r *ring) readBlocks(fn func(packet)) (int, error) { return 0, unsupported("read capture") }

func (r *ring) sockErr() error { return nil }

func (r *ring) pending() (bool, error) { return false, nil }

func (r *ring) stats() (ringStats, error) { return ringStats{}, unsupported("read capture statistics") }

// Close is a no-op on this system.
func (r *ring) Close() error { return nil }
