package probe

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"github.com/cnitrace/cnitrace/topology"
	"golang.org/x/sys/unix"
)

// icmpFilter is ICMP_FILTER (linux/icmp.h), a SOL_RAW option: a bit set per
// ICMP type the socket must not receive.
const icmpFilter = 1

// rawFD is a socket descriptor made inside a netns; it is handed to the Go
// runtime outside.
type rawFD int

func (fd rawFD) Close() error { return unix.Close(int(fd)) }

// socket is the raw ICMP socket Listen returns. Besides being a
// net.PacketConn it reports kernel TX timestamps (txStamper), and it counts
// the OPT_ID keys the kernel handed out, so that a probe's stamps are found
// again even when the socket is used for several runs or a send failed.
type socket struct {
	*net.IPConn
	nextKey atomic.Uint32 // the OPT_ID key of the next packet sent
}

// Listen opens a raw ICMPv4 socket inside ns and returns it as a
// net.PacketConn driven by the Go netpoller. The socket stays bound to ns.
// The kernel passes it only echo replies (ICMP_FILTER); Run picks this run's
// replies by token. It also reports the kernel's TX timestamps of every
// request, which Run records per probe, without turning on RX timestamping.
// It needs CAP_NET_RAW in ns's owning user namespace.
func Listen(ns *topology.NetNS) (net.PacketConn, error) {
	fd, err := topology.Open(ns, func() (rawFD, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err != nil {
			return -1, fmt.Errorf("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): %w", capHint(err, "CAP_NET_RAW"))
		}
		return rawFD(fd), nil
	})
	if err != nil {
		return nil, fmt.Errorf("open ICMP socket in %s: %w", ns, err)
	}
	if err := setOptions(int(fd)); err != nil {
		fd.Close()
		return nil, fmt.Errorf("set up ICMP socket in %s: %w", ns, err)
	}
	f := os.NewFile(uintptr(fd), "icmp@"+ns.ID())
	defer f.Close() // FilePacketConn works on a duplicate
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("wrap ICMP socket in %s: %w", ns, err)
	}
	ipc, ok := c.(*net.IPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("wrap ICMP socket in %s: got a %T, want a *net.IPConn", ns, c)
	}
	return &socket{IPConn: ipc}, nil
}

// setOptions lets through echo replies (type 0) only and asks for TX
// timestamps. Setting OPT_ID on a fresh socket starts its keys at 0.
func setOptions(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_RAW, icmpFilter, ^1); err != nil {
		return fmt.Errorf("set ICMP_FILTER: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txTimestamping); err != nil {
		return fmt.Errorf("set SO_TIMESTAMPING %#x: %w", txTimestamping, err)
	}
	return nil
}

func capHint(err error, capability string) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (needs %s)", err, capability)
	}
	return err
}
