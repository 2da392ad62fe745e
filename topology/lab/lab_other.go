//go:build !linux

package lab

import (
	"context"
	"fmt"
	"runtime"

	"github.com/cnitrace/cnitrace/topology"
)

// runState is empty: nothing runs for a lab on this system.
type runState struct{}

func unsupported(what string) error {
	return fmt.Errorf("%s: %w on %s", what, topology.ErrNotSupported, runtime.GOOS)
}

// Up is not supported on this system.
func Up(ctx context.Context, cfg Config) (*Lab, error) { return nil, unsupported("build lab") }

// Close forgets the lab; nothing can have been built on this system.
func (l *Lab) Close() error {
	if l != nil {
		l.created, l.run = nil, runState{}
	}
	return nil
}

// Down is not supported on this system.
func Down(name string) error { return unsupported("remove lab " + name) }

// List is not supported on this system.
func List() ([]string, error) { return nil, unsupported("list labs") }

// Open is not supported on this system.
func Open(name string) (*Lab, error) { return nil, unsupported("open lab " + name) }

// SetFaults is not supported on this system.
func (l *Lab) SetFaults(ctx context.Context, f Faults) error { return unsupported("set faults") }

// WireStats reports no delay line: none can run on this system.
func (l *Lab) WireStats() (WireStats, bool) { return WireStats{}, false }

// DelayLine cannot be opened on this system.
type DelayLine struct{}

// OpenDelayLine is not supported on this system.
func OpenDelayLine(l *Lab, n Network) (*DelayLine, error) { return nil, unsupported("open delay line") }

// Run is not supported on this system.
func (d *DelayLine) Run(ctx context.Context) error { return unsupported("run delay line") }

// Stats returns nothing: no delay line runs on this system.
func (d *DelayLine) Stats() WireStats { return WireStats{} }

// Close does nothing on this system.
func (d *DelayLine) Close() error { return nil }

// RunWire is not supported on this system.
func RunWire(ctx context.Context, l *Lab, n Network, ready func()) (WireStats, error) {
	return WireStats{}, unsupported("run delay line")
}

// ServeWire is not supported on this system.
func ServeWire(ctx context.Context, name string, n Network) (WireStats, error) {
	return WireStats{}, unsupported("run delay line")
}

// NewNamedNetNS is not supported on this system.
func NewNamedNetNS(dir, name string) (*topology.NetNS, error) {
	return nil, unsupported("create netns")
}

// RemoveNamedNetNS is not supported on this system.
func RemoveNamedNetNS(dir, name string) error { return unsupported("remove netns") }

// ServeBackends is not supported on this system.
func ServeBackends(ctx context.Context, name string) error { return unsupported("serve backends") }

// Processes is not supported on this system.
func Processes(name string) ([]int, error) { return nil, unsupported("list processes") }
