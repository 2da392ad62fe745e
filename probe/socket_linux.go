package probe

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cnitrace/cnitrace/topology"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// icmpFilter is ICMP_FILTER (linux/icmp.h), a SOL_RAW option: a bit set per
// ICMP type the socket must not receive.
const icmpFilter = 1

// rawFD is a socket descriptor made inside a netns; it is handed to the Go
// runtime outside.
type rawFD int

func (fd rawFD) Close() error { return unix.Close(int(fd)) }

// socket is a probe socket made in a netns: the raw ICMP or ICMPv6 socket
// Listen and ListenIPv6 return, or the raw TCP or the UDP socket Open
// returns for TCP and UDP probes. Besides being a net.PacketConn it sends
// and reads for Run (endpoint), with the kernel's TX timestamps, and it
// counts the OPT_ID keys the kernel handed out, so that a probe's stamps
// are found again even when the socket is used for several runs or a send
// failed.
type socket struct {
	net.PacketConn                 // a *net.IPConn, or a *net.UDPConn for UDP
	raw            syscall.RawConn // the PacketConn's, for the syscalls Run makes
	proto          Proto
	family         icmpProto // the family: protoICMPv6 for IPv6, else protoICMP
	// recverr says IP_RECVERR (IPV6_RECVERR) is on: ICMP errors are queued
	// on the error queue, and each also leaves a pending socket error that
	// the next send would return instead of sending (see sendKeyed).
	recverr bool
	nextKey atomic.Uint32 // the OPT_ID key of the next packet sent
	tcp     *tcpState     // TCP: the reserved source ports and the source address lookup
	rd      *fdReader     // the reader, its callback and buffers, made at the first read
	send    sender        // the send path, its callback bound at the first send
	waitMu  sync.Mutex    // guards wait, which SetReadDeadline may wake from any goroutine
	wait    *waiter       // how the reader waits, made at its first wait
}

// A socket whose methods drifted from endpoint's would not build, rather
// than quietly probing without TX timestamps.
var (
	_ endpoint = (*socket)(nil)
	_ Conn     = (*socket)(nil)
)

// icmpProto says which family the socket is of, named by its ICMP.
func (s *socket) icmpProto() icmpProto { return s.family }

// SyscallConn returns the socket's raw connection.
func (s *socket) SyscallConn() (syscall.RawConn, error) { return s.raw, nil }

// Close closes the socket and, for TCP, releases its source ports.
func (s *socket) Close() error {
	err := s.PacketConn.Close()
	s.waitMu.Lock()
	if s.wait != nil {
		err = errors.Join(err, s.wait.Close())
		s.wait = nil
	}
	s.waitMu.Unlock()
	if s.tcp != nil {
		s.tcp.close()
	}
	return err
}

// codec returns the codec of a run of cfg on s, or why s cannot send it.
func (s *socket) codec(cfg Config) (codec, error) {
	switch s.proto {
	case TCP:
		return s.codecTCP(cfg)
	case UDP:
		return s.codecUDP(cfg)
	}
	return newICMPCodec(s.family, cfg)
}

// Listen opens a raw ICMPv4 socket inside ns and returns it as a Conn
// driven by the Go netpoller. The socket stays bound to ns.
// The kernel passes it only cnitrace's echo replies (ICMP_FILTER, then a
// socket filter on the token's magic); Run picks this run's replies by
// run id. It also reports the kernel's TX timestamps of every
// request, which Run records per probe, without turning on RX timestamping.
// It needs CAP_NET_RAW in ns's owning user namespace.
func Listen(ns *topology.NetNS) (Conn, error) {
	return listen(ns, protoICMP)
}

// ListenIPv6 is Listen for IPv6 targets: a raw ICMPv6 socket inside ns that
// the kernel passes only cnitrace's ICMPv6 echo replies (ICMP6_FILTER and
// the same socket filter), with the same TX timestamps. It needs
// CAP_NET_RAW in ns's owning user namespace.
func ListenIPv6(ns *topology.NetNS) (Conn, error) {
	return listen(ns, protoICMPv6)
}

func listen(ns *topology.NetNS, p icmpProto) (Conn, error) {
	fd, err := topology.Open(ns, func() (rawFD, error) { return rawSocket(p) })
	if err != nil {
		return nil, fmt.Errorf("open %s socket in %s: %w", p, ns, err)
	}
	if err := setOptions(int(fd), p); err != nil {
		fd.Close()
		return nil, fmt.Errorf("set up %s socket in %s: %w", p, ns, err)
	}
	s, err := wrapFD(fd, strings.ToLower(p.String())+"@"+ns.ID())
	if err != nil {
		return nil, fmt.Errorf("wrap %s socket in %s: %w", p, ns, err)
	}
	s.proto, s.family = ICMP, p
	return s, nil
}

// wrapFD hands fd to the Go netpoller as a socket named name; fd is
// closed either way.
func wrapFD(fd rawFD, name string) (*socket, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close() // FilePacketConn works on a duplicate
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("got a %T, want a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &socket{PacketConn: c, raw: raw}, nil
}

// rawSocket creates a non-blocking raw socket for p in the calling
// thread's netns.
func rawSocket(p icmpProto) (rawFD, error) {
	domain, call := unix.AF_INET, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)"
	if p == protoICMPv6 {
		domain, call = unix.AF_INET6, "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)"
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(p))
	if err != nil {
		return -1, fmt.Errorf("%s: %w", call, topology.NeedsCapability(err, "CAP_NET_RAW"))
	}
	return rawFD(fd), nil
}

// setOptions lets through echo replies only, makes room for a burst of
// them and asks for TX timestamps. Setting OPT_ID on a fresh socket starts
// its keys at 0.
func setOptions(fd int, p icmpProto) error {
	if err := setReplyFilter(fd, p); err != nil {
		return err
	}
	if err := setReceiveBuffer(fd); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txTimestamping); err != nil {
		return fmt.Errorf("set SO_TIMESTAMPING %#x: %w", txTimestamping, err)
	}
	return nil
}

// receiveBuffer is the receive buffer asked for (the kernel doubles it for
// its bookkeeping). Replies and TX stamps (the error queue) share it, and
// each packet is charged its whole skb, about a kilobyte for a probe's:
// 4 MiB hold the three packets of every probe for more than 100 ms at
// MinInterval. It is a limit, not an allocation: an idle socket uses none
// of it.
const receiveBuffer = 4 << 20

// setReceiveBuffer sets the receive buffer to receiveBuffer with
// SO_RCVBUFFORCE, which needs CAP_NET_ADMIN in the netns's user namespace,
// and else with SO_RCVBUF, which the kernel caps at net.core.rmem_max
// (212992 by default): then Result.SocketDrops tells whether it was
// enough.
func setReceiveBuffer(fd int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer)
	if err == nil {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer); err != nil {
		return fmt.Errorf("set SO_RCVBUF %d: %w", receiveBuffer, err)
	}
	return nil
}

// rxDrops reads the kernel's count of packets the socket's receive queue
// dropped for want of room (sk_drops, SK_MEMINFO_DROPS of SO_MEMINFO, Linux
// 4.12 and later; the drops column of /proc/net/raw).
func (s *socket) rxDrops() (uint64, bool) {
	var mem [unix.SK_MEMINFO_VARS]uint32
	var gerr error
	cerr := s.raw.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(mem))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			gerr = errno
		} else if size <= unix.SK_MEMINFO_DROPS*4 {
			gerr = unix.EINVAL
		}
	})
	if cerr != nil || gerr != nil {
		return 0, false
	}
	return uint64(mem[unix.SK_MEMINFO_DROPS]), true
}

// setReplyFilter makes the kernel drop every ICMP message but cnitrace's
// echo replies before they reach the socket: first by type, type 0 with
// ICMP_FILTER (SOL_RAW) on ICMPv4, type 129 with ICMP6_FILTER
// (IPPROTO_ICMPV6) on ICMPv6, then by the token's magic with a socket
// filter (echoReplyFilter).
func setReplyFilter(fd int, p icmpProto) error {
	if p == protoICMPv6 {
		f := icmp6Filter(uint8(ipv6.ICMPTypeEchoReply))
		if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
			return fmt.Errorf("set ICMP6_FILTER: %w", err)
		}
	} else if err := unix.SetsockoptInt(fd, unix.SOL_RAW, icmpFilter, ^1); err != nil {
		return fmt.Errorf("set ICMP_FILTER: %w", err)
	}
	prog, err := echoReplyFilter(p)
	if err != nil {
		return err
	}
	return attachFilter(fd, prog)
}

// attachFilter attaches prog to the socket fd as its socket filter
// (SO_ATTACH_FILTER): what it refuses the kernel drops before the
// receive queue, and the reader is never woken for it.
func attachFilter(fd int, prog []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach the socket filter: %w", err)
	}
	return nil
}

// icmp6Filter returns the ICMP6_FILTER that passes only the given ICMPv6
// types. As with ICMP_FILTER, a set bit blocks: Linux drops type t when bit
// t%32 of word t/32 is set (icmpv6_filter in net/ipv6/raw.c; glibc's
// ICMP6_FILTER_WILLPASS is the same test). The words are in host order.
func icmp6Filter(pass ...uint8) unix.ICMPv6Filter {
	var f unix.ICMPv6Filter
	for i := range f.Data {
		f.Data[i] = ^uint32(0)
	}
	for _, t := range pass {
		f.Data[t>>5] &^= 1 << (t & 31)
	}
	return f
}
