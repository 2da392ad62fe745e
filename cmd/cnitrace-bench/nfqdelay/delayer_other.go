//go:build !linux

package nfqdelay

import (
	"context"
	"fmt"
	"runtime"

	"github.com/cnitrace/cnitrace/topology"
)

// Delayer is not supported on this system.
type Delayer struct{}

// Open is not supported on this system.
func Open(ns *topology.NetNS, cfg Config) (*Delayer, error) {
	return nil, fmt.Errorf("open nfqueue: %w on %s", ErrNotSupported, runtime.GOOS)
}

// Close does nothing.
func (d *Delayer) Close() error { return nil }

// Stats returns nothing.
func (d *Delayer) Stats() Stats { return Stats{} }

// Run is not supported on this system.
func (d *Delayer) Run(ctx context.Context) error { return ErrNotSupported }
