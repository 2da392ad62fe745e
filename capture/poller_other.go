//go:build !linux

package capture

import "time"

// poller stands in for the Linux epoll set; it cannot be made here.
type poller struct{}

func newPoller(rings []*ring) (*poller, error) { return nil, unsupported("wait on capture sockets") }

func (p *poller) wait(deadline time.Time) ([]readiness, error) {
	return nil, unsupported("wait on capture sockets")
}

func (p *poller) ready() ([]readiness, error) { return nil, unsupported("wait on capture sockets") }

func (p *poller) sleep(d time.Duration) error {
	return unsupported("sleep on a timer")
}

func (p *poller) wake() {}

func (p *poller) remove(r *ring) error { return nil }

// Close is a no-op on this system.
func (p *poller) Close() error { return nil }
