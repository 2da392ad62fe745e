//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
)

type fd int

func (f fd) Close() error { return unix.Close(int(f)) }

const floodPort = 9

// floodStats is what the flood's senders did. Their CPU time is where the
// kernel bills the taps on the flood's packets: a packet socket's filter
// runs in the context that sends the packet through the tap (the sendto
// and the softirq it runs inline on veth and VXLAN), never in the
// capturing process.
type floodStats struct {
	Packets   int           `json:"packets"`
	PPS       float64       `json:"packets_per_second"`
	SenderCPU time.Duration `json:"sender_cpu_ns"`
}

// nsPerPacket is the senders' CPU time per packet sent.
func (f floodStats) nsPerPacket() float64 {
	if f.Packets == 0 {
		return 0
	}
	return float64(f.SenderCPU.Nanoseconds()) / float64(f.Packets)
}

// floodDrop is the rule that drops the flood as it comes out of node 2's
// overlay device: the flood has crossed every capture point of node 1 by
// then, and the senders, which pay for the whole path (the softirq runs
// inline in their sendto), are spared node 2's bridge, veth and socket.
var floodDrop = []string{"PREROUTING", "-t", "raw", "-i", lab.VXLANName, "-p", "udp", "--dport", strconv.Itoa(floodPort), "-j", "DROP"}

// withFlood runs fn while pod 1 floods pod 2 for d.
func withFlood(ctx context.Context, l *lab.Lab, d time.Duration, fn func() error) (floodStats, error) {
	s, err := sink(l.Nodes[1].Pod.NS, floodPort)
	if err != nil {
		return floodStats{}, err
	}
	defer s.Close()
	n2 := l.Nodes[1].NSPath
	if out, err := l.Command(ctx, n2, "iptables", append([]string{"-I"}, floodDrop...)...).CombinedOutput(); err != nil {
		return floodStats{}, fmt.Errorf("iptables: %v: %s", err, out)
	}
	defer l.Command(context.WithoutCancel(ctx), n2, "iptables", append([]string{"-D"}, floodDrop...)...).Run()
	// Two senders: one thread tops out below 100k packets/s here.
	const senders = 2
	var wg sync.WaitGroup
	sent := make([]int, senders)
	cpu := make([]time.Duration, senders)
	errs := make([]error, senders)
	for i := range senders {
		wg.Go(func() {
			sent[i], cpu[i], errs[i] = flood(ctx, l.Nodes[0].Pod.NS, l.Nodes[1].Pod.Addr, floodPort, 64, d)
		})
	}
	err = fn()
	wg.Wait()
	var st floodStats
	for i := range senders {
		st.Packets += sent[i]
		st.SenderCPU += cpu[i]
	}
	st.PPS = float64(st.Packets) / d.Seconds()
	return st, errors.Join(append(errs, err)...)
}

// flood sends UDP datagrams of size bytes from inside ns to dst:port as
// fast as one thread can for d, in batches, and returns how many it sent
// and the CPU time of its thread (RUSAGE_THREAD: its sendto calls and the
// softirq work they run). It is bounded by d and stops early when ctx is
// done.
func flood(ctx context.Context, ns *topology.NetNS, dst netip.Addr, port int, size int, d time.Duration) (int, time.Duration, error) {
	s, err := topology.Open(ns, func() (fd, error) {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return fd(s), err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("open flood socket in %s: %w", ns, err)
	}
	defer s.Close()
	if err := unix.Connect(int(s), &unix.SockaddrInet4{Addr: dst.As4(), Port: port}); err != nil {
		return 0, 0, fmt.Errorf("connect flood socket: %w", err)
	}
	runtime.LockOSThread() // one thread, so that its rusage is the flood's
	defer runtime.UnlockOSThread()
	before := threadCPU()
	batch := newBatch(size)
	sent := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		for range 8 {
			sent += batch.send(int(s))
		}
	}
	return sent, threadCPU() - before, nil
}

// mmsghdr is struct mmsghdr of sendmmsg(2), which x/sys/unix lacks.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batch is floodBatch datagrams handed to the kernel by one sendmmsg: the
// system call's own cost is paid once per batch, so that the senders'
// time goes to the path the packets take (and the taps on it).
type batch struct {
	msgs []mmsghdr
	iovs []unix.Iovec
	buf  []byte
}

const floodBatch = 64

func newBatch(size int) *batch {
	b := &batch{msgs: make([]mmsghdr, floodBatch), iovs: make([]unix.Iovec, floodBatch), buf: make([]byte, size)}
	for i := range b.msgs {
		b.iovs[i].Base = &b.buf[0]
		b.iovs[i].SetLen(size)
		b.msgs[i].hdr.Iov = &b.iovs[i]
		b.msgs[i].hdr.SetIovlen(1)
	}
	return b
}

// send sends the batch on the connected socket s and returns how many
// datagrams the kernel took.
func (b *batch) send(s int) int {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), 0, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}

func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
