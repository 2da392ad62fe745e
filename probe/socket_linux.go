package probe

import (
	"errors"
	"fmt"
	"net"
	"os"

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

// Listen opens a raw ICMPv4 socket inside ns and returns it as a
// net.PacketConn driven by the Go netpoller. The socket stays bound to ns.
// The kernel passes it only echo replies (ICMP_FILTER); Run picks this run's
// replies by token. It needs CAP_NET_RAW in ns's owning user namespace.
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
	// Let through echo replies (type 0) only.
	if err := unix.SetsockoptInt(int(fd), unix.SOL_RAW, icmpFilter, ^1); err != nil {
		fd.Close()
		return nil, fmt.Errorf("set ICMP_FILTER on socket in %s: %w", ns, err)
	}
	f := os.NewFile(uintptr(fd), "icmp@"+ns.ID())
	defer f.Close() // FilePacketConn works on a duplicate
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("wrap ICMP socket in %s: %w", ns, err)
	}
	return c, nil
}

func capHint(err error, capability string) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (needs %s)", err, capability)
	}
	return err
}
