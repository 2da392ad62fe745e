//go:build !linux

package topology

import (
	"fmt"
	"io"
	"runtime"
)

func unsupported(what string) error {
	return fmt.Errorf("%s: %w on %s", what, ErrNotSupported, runtime.GOOS)
}

// OpenNetNS is not supported on this system.
func OpenNetNS(path string) (*NetNS, error) { return nil, unsupported("open netns " + path) }

// NetNSOfPID is not supported on this system.
func NetNSOfPID(procRoot string, pid int) (*NetNS, error) { return nil, unsupported("open netns") }

// CurrentNetNS is not supported on this system.
func CurrentNetNS() (*NetNS, error) { return nil, unsupported("open current netns") }

// Close is a no-op on this system.
func (ns *NetNS) Close() error { return nil }

// Do is not supported on this system.
func (ns *NetNS) Do(fn func() error) error { return unsupported("enter netns") }

// Open is not supported on this system.
func Open[T io.Closer](ns *NetNS, open func() (T, error)) (T, error) {
	var zero T
	return zero, unsupported("enter netns")
}
