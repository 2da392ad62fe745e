//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

type fd int

func (f fd) Close() error { return unix.Close(int(f)) }

// flood sends UDP datagrams of size bytes from inside ns to dst:port as
// fast as one thread can for d, in batches, and returns how many it sent.
// It is bounded by d and stops early when ctx is done.
func flood(ctx context.Context, ns *topology.NetNS, dst netip.Addr, port int, size int, d time.Duration) (int, error) {
	s, err := topology.Open(ns, func() (fd, error) {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return fd(s), err
	})
	if err != nil {
		return 0, fmt.Errorf("open flood socket in %s: %w", ns, err)
	}
	defer s.Close()
	if err := unix.Connect(int(s), &unix.SockaddrInet4{Addr: dst.As4(), Port: port}); err != nil {
		return 0, fmt.Errorf("connect flood socket: %w", err)
	}
	buf := make([]byte, size)
	sent := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		for range 256 {
			if _, err := unix.Write(int(s), buf); err == nil {
				sent++
			}
		}
	}
	return sent, nil
}

// sink binds a UDP port inside ns and never reads it, so flood packets end
// in a full receive buffer instead of ICMP errors.
func sink(ns *topology.NetNS, port int) (fd, error) {
	return topology.Open(ns, func() (fd, error) {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		if err := unix.Bind(s, &unix.SockaddrInet4{Port: port}); err != nil {
			unix.Close(s)
			return -1, err
		}
		return fd(s), nil
	})
}
