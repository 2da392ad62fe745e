//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// proberRun is what the bench's minimal prober did: its echo requests, the
// replies it read, and its thread's CPU (RUSAGE_THREAD), which in the lab
// holds the whole round trip's kernel work, the taps on the path included.
type proberRun struct {
	Probes  int           `json:"probes"`
	Replies int           `json:"replies"`
	CPU     time.Duration `json:"thread_cpu_ns"`
	Sys     time.Duration `json:"thread_sys_ns"`
}

// nsPerProbe is its thread's CPU per probe sent.
func (p *proberRun) nsPerProbe() float64 {
	if p == nil || p.Probes == 0 {
		return 0
	}
	return float64(p.CPU.Nanoseconds()) / float64(p.Probes)
}

// sysPerProbe is its thread's system time per probe sent.
func (p *proberRun) sysPerProbe() float64 {
	if p == nil || p.Probes == 0 {
		return 0
	}
	return float64(p.Sys.Nanoseconds()) / float64(p.Probes)
}

// proberSize is the echo data of cnitrace's probes (--size 56, ping's
// default too).
const proberSize = 56

// icmpFilter is ICMP_FILTER of <linux/icmp.h> (SOL_RAW): a mask of the
// types a raw ICMP socket does not receive.
const icmpFilter = 1

// bareProbe sends n echo requests from pod 1 of l to pod 2, interval apart
// on a fixed grid, reading each reply before it sleeps, all on one OS
// thread, and returns its thread's CPU. It is bounded: every read gives up
// after a second, the grid never waits for a late probe, and it stops
// early when ctx is done.
func bareProbe(ctx context.Context, l *lab.Lab, n int, interval time.Duration) (proberRun, error) {
	ns, dst := l.Nodes[0].Pod.NS, l.Nodes[1].Pod.Addr
	s, err := openProber(ns, dst)
	if err != nil {
		return proberRun{}, err
	}
	defer s.Close()
	type result struct {
		p   proberRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // one thread, so that its rusage is the prober's
		defer runtime.UnlockOSThread()
		p, err := proberLoop(ctx, int(s), n, interval)
		done <- result{p, err}
	}()
	r := <-done
	return r.p, r.err
}

// openProber opens a raw ICMP socket in ns connected to dst that receives
// only echo replies and gives up a read after a second.
func openProber(ns *topology.NetNS, dst netip.Addr) (fd, error) {
	s, err := topology.Open(ns, func() (fd, error) {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return fd(s), err
	})
	if err != nil {
		return -1, fmt.Errorf("open raw ICMP socket in %s: %w", ns, err)
	}
	tv := unix.NsecToTimeval(time.Second.Nanoseconds())
	for _, e := range []error{
		unix.SetsockoptInt(int(s), unix.SOL_RAW, icmpFilter, int(^int32(1<<0))), // all but echo reply (type 0)
		unix.SetsockoptTimeval(int(s), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		unix.Connect(int(s), &unix.SockaddrInet4{Addr: dst.As4()}),
	} {
		if e != nil {
			s.Close()
			return -1, fmt.Errorf("set up raw ICMP socket in %s: %w", ns, e)
		}
	}
	return s, nil
}

// proberLoop is bareProbe's loop on the calling, locked thread.
func proberLoop(ctx context.Context, s, n int, interval time.Duration) (proberRun, error) {
	p := proberRun{}
	id := uint16(os.Getpid())
	pkt := proberPacket(id, proberSize, probe.Magic)
	buf := make([]byte, 1500)
	var ru0 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru0); err != nil {
		return p, fmt.Errorf("getrusage: %w", err)
	}
	var next unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &next)
	for seq := range n {
		if ctx.Err() != nil {
			break
		}
		setSeq(pkt, uint16(seq))
		if _, err := unix.Write(s, pkt); err != nil {
			return p, fmt.Errorf("send echo request %d: %w", seq, err)
		}
		p.Probes++
		if readReply(s, buf, id, uint16(seq)) {
			p.Replies++
		}
		next = unix.NsecToTimespec(next.Nano() + interval.Nanoseconds())
		for errors.Is(unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &next, nil), unix.EINTR) {
		} // absolute: an interrupted sleep resumes until the same time
	}
	var ru1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru1); err != nil {
		return p, fmt.Errorf("getrusage: %w", err)
	}
	p.Sys = time.Duration(ru1.Stime.Nano() - ru0.Stime.Nano())
	p.CPU = p.Sys + time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano())
	return p, nil
}

// readReply reads until the echo reply with id and seq, a timeout, or a
// few packets that are not it (late replies to earlier probes).
func readReply(s int, buf []byte, id, seq uint16) bool {
	for range 8 {
		n, err := unix.Read(s, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false // EAGAIN: SO_RCVTIMEO passed
		}
		if got, ok := echoReplySeq(buf[:n], id); ok && got == seq {
			return true
		}
	}
	return false
}
