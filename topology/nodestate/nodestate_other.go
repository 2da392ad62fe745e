//go:build !linux

package nodestate

import (
	"context"
	"fmt"
	"runtime"

	"github.com/cnitrace/cnitrace/topology"
)

// Take is not supported on this system: the snapshot holds one gap
// saying so.
func Take(ctx context.Context, node, pod *topology.NetNS, o Options) *Snapshot {
	return &Snapshot{Gaps: []Gap{{Name: "node/", Err: fmt.Errorf("take the network state: %w on %s", topology.ErrNotSupported, runtime.GOOS)}}}
}

// Flows is not supported on this system.
type Flows struct{}

// OpenFlows is not supported on this system.
func OpenFlows(node *topology.NetNS, path *topology.Path, flow topology.Flow) (*Flows, error) {
	return nil, fmt.Errorf("read conntrack: %w on %s", topology.ErrNotSupported, runtime.GOOS)
}

// Take is not supported on this system.
func (f *Flows) Take() (File, error) {
	return File{}, fmt.Errorf("read conntrack: %w on %s", topology.ErrNotSupported, runtime.GOOS)
}

// Close does nothing.
func (f *Flows) Close() {}

// Kernel is not supported on this system.
func Kernel() (string, error) {
	return "", fmt.Errorf("uname: %w on %s", topology.ErrNotSupported, runtime.GOOS)
}
