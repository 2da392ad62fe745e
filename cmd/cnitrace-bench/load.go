//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// loadResult is probing at 100/s while a UDP flood crosses every capture
// point of the path, and what tcpdump spends on the same interfaces.
type loadResult struct {
	Seconds         float64 `json:"seconds"`
	FloodPPS        float64 `json:"flood_packets_per_second"`
	Probes          int     `json:"probes"`
	Answered        int     `json:"answered"`
	MissingAtAPoint int     `json:"answered_probes_missing_at_a_point"` // answered, yet not seen at both ends of some segment
	KernelDrops     uint64  `json:"packet_statistics_drops"`            // tp_drops over every point (PACKET_STATISTICS)
	CnitraceCPU     float64 `json:"cnitrace_cpu_seconds"`
	TcpdumpCPU      float64 `json:"tcpdump_cpu_seconds"`
	Goal            string  `json:"goal"`
	Met             bool    `json:"met"`
}

const floodPort = 9

func (b *bench) captureUnderLoad(ctx context.Context, r *results) error {
	l, err := b.newLab(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	dur := time.Duration(b.counts(10, 3)) * time.Second
	res := &loadResult{Seconds: dur.Seconds(), Probes: int(dur / (10 * time.Millisecond))}
	if res.CnitraceCPU, err = b.loadRun(ctx, l, res, dur); err != nil {
		return err
	}
	if res.TcpdumpCPU, err = b.tcpdumpRun(ctx, l, dur); err != nil {
		return err
	}
	res.Goal = "no probe observation lost; CPU no more than tcpdump's"
	res.Met = res.MissingAtAPoint == 0 && res.CnitraceCPU <= res.TcpdumpCPU
	r.Load = res
	return nil
}

// withFlood runs fn while pod 1 floods pod 2 for d.
func withFlood(ctx context.Context, l *lab.Lab, d time.Duration, fn func() error) (pps float64, err error) {
	s, err := sink(l.Nodes[1].Pod.NS, floodPort)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	// Two senders: one thread tops out below 100k packets/s here.
	const senders = 2
	var wg sync.WaitGroup
	sent := make([]int, senders)
	errs := make([]error, senders)
	for i := range senders {
		wg.Go(func() {
			sent[i], errs[i] = flood(ctx, l.Nodes[0].Pod.NS, l.Nodes[1].Pod.Addr, floodPort, 64, d)
		})
	}
	err = fn()
	wg.Wait()
	total := 0
	for _, n := range sent {
		total += n
	}
	return float64(total) / d.Seconds(), errors.Join(append(errs, err)...)
}

// loadRun probes at 100/s under the flood and returns cnitrace's CPU time.
func (b *bench) loadRun(ctx context.Context, l *lab.Lab, res *loadResult, d time.Duration) (float64, error) {
	var t traceRun
	pps, err := withFlood(ctx, l, d, func() error {
		var err error
		t, err = b.trace(ctx, l, "--count", strconv.Itoa(res.Probes), "--interval", "10ms")
		return err
	})
	if err != nil {
		return 0, err
	}
	res.FloodPPS, res.Answered = pps, t.report.Probes.Received
	for _, p := range t.report.Points {
		res.KernelDrops += p.Capture.Drops
	}
	for _, s := range t.report.Segments {
		res.MissingAtAPoint = max(res.MissingAtAPoint, res.Answered-s.Seen)
	}
	return t.cpu.Seconds(), nil
}

// tcpdumpRun captures the same five interfaces with tcpdump and an
// equivalent filter under the same flood, and returns its CPU time.
func (b *bench) tcpdumpRun(ctx context.Context, l *lab.Lab, d time.Duration) (float64, error) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return 0, fmt.Errorf("tcpdump is needed for the comparison (apt-get install tcpdump): %w", err)
	}
	const filter = "icmp[8:4] = 0x636e7431 or (udp dst port 8472 and udp[50:4] = 0x636e7431)"
	n1 := l.Nodes[0]
	ifaces := []struct{ ns, name string }{{n1.Pod.NSPath, lab.PodIfName}, {n1.NSPath, n1.Pod.HostVeth},
		{n1.NSPath, lab.BridgeName}, {n1.NSPath, lab.VXLANName}, {n1.NSPath, lab.UplinkName}}
	var cmds []*exec.Cmd
	for _, i := range ifaces {
		c := l.Command(ctx, i.ns, "timeout", "-s", "INT", fmt.Sprintf("%.0f", d.Seconds()+1), "tcpdump", "-i", i.name, "-n", "-q", "-w", "/dev/null", filter)
		if err := c.Start(); err != nil {
			return 0, fmt.Errorf("tcpdump on %s: %w", i.name, err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(500 * time.Millisecond) // let them arm
	_, err := withFlood(ctx, l, d, func() error {
		_, err := b.trace(ctx, l, "--count", strconv.Itoa(int(d/(10*time.Millisecond))), "--interval", "10ms")
		return err
	})
	cpu := 0.0
	for _, c := range cmds {
		c.Wait()
		cpu += cpuTime(c).Seconds()
	}
	return cpu, err
}
