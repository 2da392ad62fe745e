package main

import (
	"context"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// injectNetwork delays frames between the nodes' uplinks.
func injectNetwork(ctx context.Context, l *lab.Lab, d time.Duration) (func() error, error) {
	return nil, errNoInjector
}
