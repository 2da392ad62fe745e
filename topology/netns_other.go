//go:build !linux

package topology

import (
	"fmt"
	"io"
	"runtime"
)

// NamedNetNSDir is where iproute2 keeps named network namespaces.
const NamedNetNSDir = "/run/netns"

func unsupported(what string) error {
	return fmt.Errorf("%s: %w on %s", what, ErrNotSupported, runtime.GOOS)
}

// OpenNetNS is not supported on this system.
func OpenNetNS(path string) (*NetNS, error) { return nil, unsupported("open netns " + path) }

// NetNSOfPID is not supported on this system.
func NetNSOfPID(procRoot string, pid int) (*NetNS, error) { return nil, unsupported("open netns") }

// CurrentNetNS is not supported on this system.
func CurrentNetNS() (*NetNS, error) { return nil, unsupported("open current netns") }

// NewNamedNetNS is not supported on this system.
func NewNamedNetNS(dir, name string) (*NetNS, error) { return nil, unsupported("create netns") }

// RemoveNamedNetNS is not supported on this system.
func RemoveNamedNetNS(dir, name string) error { return unsupported("remove netns") }

// Close is a no-op on this system.
func (ns *NetNS) Close() error { return nil }

// Do is not supported on this system.
func (ns *NetNS) Do(fn func() error) error { return unsupported("enter netns") }

// Open is not supported on this system.
func Open[T io.Closer](ns *NetNS, open func() (T, error)) (T, error) {
	var zero T
	return zero, unsupported("enter netns")
}

// ThreadsOutsideNetNS is not supported on this system.
func ThreadsOutsideNetNS(want *NetNS) ([]int, error) { return nil, unsupported("list threads") }
