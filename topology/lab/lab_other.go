//go:build !linux

package lab

import (
	"context"
	"fmt"
	"runtime"

	"github.com/cnitrace/cnitrace/topology"
)

func unsupported(what string) error {
	return fmt.Errorf("%s: %w on %s", what, topology.ErrNotSupported, runtime.GOOS)
}

// Up is not supported on this system.
func Up(ctx context.Context, cfg Config) (*Lab, error) { return nil, unsupported("build lab") }

// Close forgets the lab; nothing can have been built on this system.
func (l *Lab) Close() error {
	if l != nil {
		l.created = nil
	}
	return nil
}

// Down is not supported on this system.
func Down(name string) error { return unsupported("remove lab " + name) }

// List is not supported on this system.
func List() ([]string, error) { return nil, unsupported("list labs") }
