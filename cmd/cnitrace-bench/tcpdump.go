//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// iface is one capture point of the lab's five-point path.
type iface struct{ ns, name string }

// pathIfaces are the five points cnitrace captures on from node 1's pod:
// pod eth0, host veth, bridge, overlay, uplink.
func pathIfaces(l *lab.Lab) []iface {
	n1 := l.Nodes[0]
	return []iface{{n1.Pod.NSPath, lab.PodIfName}, {n1.NSPath, n1.Pod.HostVeth},
		{n1.NSPath, lab.BridgeName}, {n1.NSPath, lab.VXLANName}, {n1.NSPath, lab.UplinkName}}
}

// tcpdumps is one buffered tcpdump (no --immediate-mode, writing to
// /dev/null) per interface, the way an SRE would watch the path.
type tcpdumps struct {
	ifaces []iface
	cmds   []*exec.Cmd
	stderr []*strings.Builder
	copied sync.WaitGroup
}

// startTcpdumps starts them with filter and returns once every one says
// it is listening (or after 5 s, an error).
func startTcpdumps(ctx context.Context, l *lab.Lab, filter string) (*tcpdumps, error) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return nil, fmt.Errorf("tcpdump is needed for the comparison (apt-get install tcpdump): %w", err)
	}
	t := &tcpdumps{ifaces: pathIfaces(l)}
	ready := make(chan error, len(t.ifaces))
	for _, i := range t.ifaces {
		// nsenter execs tcpdump: the pid is tcpdump's, SIGINT reaches it.
		c := l.Command(ctx, i.ns, "tcpdump", "-i", i.name, "-n", "-w", os.DevNull, filter)
		// Our own pipe, not StderrPipe: Wait would close that one before
		// the counts tcpdump prints as it exits were read.
		pipe, pw, err := os.Pipe()
		if err != nil {
			t.stop()
			return nil, err
		}
		c.Stderr = pw
		err = c.Start()
		pw.Close()
		if err != nil {
			pipe.Close()
			t.stop()
			return nil, fmt.Errorf("tcpdump on %s: %w", i.name, err)
		}
		var sb strings.Builder
		t.cmds, t.stderr = append(t.cmds, c), append(t.stderr, &sb)
		t.copied.Go(func() { defer pipe.Close(); copyUntilListening(pipe, &sb, ready) })
	}
	timeout := time.After(5 * time.Second)
	for range t.ifaces {
		select {
		case err := <-ready:
			if err != nil {
				t.stop()
				return nil, err
			}
		case <-timeout:
			t.stop()
			return nil, errors.New("tcpdump: not listening after 5 s")
		}
	}
	return t, nil
}

// copyUntilListening copies r to sb, reporting on ready when tcpdump says
// it listens (or stops first).
func copyUntilListening(r io.Reader, sb *strings.Builder, ready chan<- error) {
	sc := bufio.NewScanner(r)
	said := false
	for sc.Scan() {
		sb.WriteString(sc.Text() + "\n")
		if !said && strings.Contains(sc.Text(), "listening on") {
			said = true
			ready <- nil
		}
	}
	if !said {
		ready <- fmt.Errorf("tcpdump stopped before listening: %s", strings.TrimSpace(sb.String()))
	}
}

// tcpdumpResult is what the five did.
type tcpdumpResult struct {
	CPU    time.Duration
	Counts []tcpdumpCounts // one per interface, in pathIfaces order
	Names  []string
}

// bufferTimeout is tcpdump's: its ring hands a block of packets to it
// when the block is full or this long after its first packet. Packets in
// a block not yet handed over when it stops are "received by filter" but
// not "captured": stop waits it out, so that the count is of every packet
// (the wait costs a sleeping tcpdump nothing).
const bufferTimeout = time.Second

// stop waits out the buffer timeout, interrupts them, waits for them
// (killing any that takes over 5 s) and returns their CPU time and packet
// counts.
func (t *tcpdumps) stop() (tcpdumpResult, error) {
	var res tcpdumpResult
	var errs []error
	time.Sleep(bufferTimeout + 200*time.Millisecond)
	for _, c := range t.cmds {
		c.Process.Signal(os.Interrupt)
	}
	for _, c := range t.cmds {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
		res.CPU += cpuTime(c)
	}
	t.copied.Wait()
	for i := range t.cmds {
		counts, ok := parseTcpdumpCounts(t.stderr[i].String())
		if !ok {
			errs = append(errs, fmt.Errorf("tcpdump on %s printed no counts: %s", t.ifaces[i].name, strings.TrimSpace(t.stderr[i].String())))
		}
		res.Counts = append(res.Counts, counts)
		res.Names = append(res.Names, t.ifaces[i].name)
	}
	return res, errors.Join(errs...)
}

// sawAll checks that every tcpdump captured at least want packets: a
// comparator that saw fewer than the packets it is compared on is no
// comparator. It returns "" or what was missed.
func (r tcpdumpResult) sawAll(want uint64) string {
	var short []string
	for i, c := range r.Counts {
		if c.Captured < want {
			short = append(short, fmt.Sprintf("tcpdump on %s saw %d of %d packets", r.Names[i], c.Captured, want))
		}
	}
	return strings.Join(short, "; ")
}
