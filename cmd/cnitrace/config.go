package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
)

// traceConfig is everything the trace and path commands were asked to do.
type traceConfig struct {
	netns     string // pod netns file
	pid       int    // or a process in the pod
	procRoot  string
	nodeNetns string // the node's netns file; empty means our own
	to        netip.Addr
	count     int
	interval  time.Duration
	timeout   time.Duration
	size      int
	format    report.Format
	out       string
	baseline  bool // also probe from the node's netns and compare
}

// addSourceFlags registers the flags that say where to probe from and to.
func addSourceFlags(fs *flag.FlagSet, c *traceConfig, to *string) {
	fs.StringVar(&c.netns, "netns", "", "network namespace `file` of the pod (/run/netns/NAME, /proc/PID/ns/net)")
	fs.IntVar(&c.pid, "pid", 0, "`PID` of a process in the pod (uses PROC/PID/ns/net)")
	fs.StringVar(&c.procRoot, "proc", "/proc", "`dir` where the host's processes are (with hostPID: /proc)")
	fs.StringVar(&c.nodeNetns, "node-netns", "", "network namespace `file` of the node (default: the one cnitrace runs in)")
	fs.StringVar(to, "to", "", "target `IP` address, IPv4 or IPv6: a pod (on another node or this one), a Service address, or a host outside the cluster")
}

// addProbeFlags registers the ping-like flags of trace.
func addProbeFlags(fs *flag.FlagSet, c *traceConfig, format *string) {
	fs.IntVar(&c.count, "count", 30, "number of probes, like ping -c")
	fs.DurationVar(&c.interval, "interval", 100*time.Millisecond, "time between probes, like ping -i")
	fs.DurationVar(&c.timeout, "timeout", time.Second, "how long to wait for replies after the last probe, like ping -W")
	fs.IntVar(&c.size, "size", 56, "ICMP echo data bytes, like ping -s (at least 24)")
	fs.StringVar(format, "format", "text", "report `format`: text or json")
	fs.StringVar(&c.out, "out", "", "write the report to `file` instead of stdout")
	fs.BoolVar(&c.baseline, "baseline", false, "also probe the target from the node netns (as a hostNetwork pod would), interleaved, and report the pod path's overhead")
}

// validate checks what can be checked without touching the system.
func (c *traceConfig) validate(to, format string) error {
	switch {
	case c.netns == "" && c.pid == 0:
		return cli.Usagef("say where to probe from: --netns FILE or --pid PID")
	case c.netns != "" && c.pid != 0:
		return cli.Usagef("--netns and --pid both given: use one")
	case c.pid < 0:
		return cli.Usagef("--pid %d: must be a positive process id", c.pid)
	case to == "":
		return cli.Usagef("say what to probe: --to IP")
	}
	addr, err := netip.ParseAddr(to)
	if err != nil {
		return cli.Usagef("--to %q: not an IP address", to)
	}
	c.to = addr.Unmap()
	if c.to.Zone() != "" {
		return cli.Usagef("--to %s: a zoned (link-local) target is not supported: its zone names an interface of the pod's netns, not ours", to)
	}
	if format != "" {
		if c.format, err = report.ParseFormat(format); err != nil {
			return cli.Usagef("--format: %v", err)
		}
	}
	return nil
}

func (c *traceConfig) probeConfig() probe.Config {
	return probe.Config{
		Target: c.to, Count: c.count, Interval: c.interval, Timeout: c.timeout,
		Size: c.size, ID: uint16(os.Getpid() & 0xffff),
	}
}

// namespaces opens the pod's and the node's network namespaces. A path that
// does not exist or is not a network namespace is a usage error.
func (c *traceConfig) namespaces() (pod, node *topology.NetNS, err error) {
	if c.pid != 0 {
		pod, err = topology.NetNSOfPID(c.procRoot, c.pid)
	} else {
		pod, err = topology.OpenNetNS(c.netns)
	}
	if err != nil {
		return nil, nil, nsError("pod", err)
	}
	if c.nodeNetns != "" {
		node, err = topology.OpenNetNS(c.nodeNetns)
	} else {
		node, err = topology.CurrentNetNS()
	}
	if err != nil {
		pod.Close()
		return nil, nil, nsError("node", err)
	}
	return pod, node, nil
}

// resolve opens the namespaces and discovers the path between them. The
// caller closes pod and node when err is nil.
func (c *traceConfig) resolve() (pod, node *topology.NetNS, path *topology.Path, err error) {
	if pod, node, err = c.namespaces(); err != nil {
		return nil, nil, nil, err
	}
	if c.baseline && pod.ID() == node.ID() {
		pod.Close()
		node.Close()
		return nil, nil, nil, cli.Usagef("--baseline: the source netns %s is the node's: a hostNetwork trace has nothing to compare with (trace from a pod's netns)", pod.ID())
	}
	if err = c.warmUp(pod); err == nil {
		path, err = topology.Discover(pod, node, c.to)
	}
	if err != nil {
		pod.Close()
		node.Close()
		return nil, nil, nil, err
	}
	return pod, node, path, nil
}

func nsError(role string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return cli.Usagef("%s netns: %v (check the path; 'ip netns list' shows named ones)", role, err)
	case errors.Is(err, topology.ErrNotNetNS):
		return cli.Usagef("%s netns: %v (want /run/netns/NAME or /proc/PID/ns/net)", role, err)
	}
	return fmt.Errorf("%s netns: %w", role, err)
}

// output returns where the report goes and a function that completes it:
// with --out the report is written to a temporary file renamed into place
// only when everything worked, so a failed run leaves nothing behind.
func (c *traceConfig) output(stdout io.Writer) (io.Writer, func(ok bool) error, error) {
	if c.out == "" {
		return stdout, func(bool) error { return nil }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(c.out), ".cnitrace-report-*")
	if err != nil {
		return nil, nil, cli.Usagef("--out %s: %v", c.out, err)
	}
	done := func(ok bool) error {
		cerr := f.Close()
		if !ok || cerr != nil {
			os.Remove(f.Name())
			return cerr
		}
		if err := os.Rename(f.Name(), c.out); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("write report to %s: %w", c.out, err)
		}
		return nil
	}
	return f, done, nil
}

// warmUpTimeout bounds the wait for the warm-up probe's reply.
const warmUpTimeout = 200 * time.Millisecond

// warmUp sends one echo request from the source netns to the target before
// discovery, and waits for its reply at most warmUpTimeout: it leaves in
// the node's conntrack the DNAT of a Service address that Discover follows,
// and in the neighbour tables the entries a same-node path is found by.
// It is best effort, but for a missing capability: without it a Service's
// DNAT is never found and discovery follows the untranslated address to the
// wrong place (path too needs CAP_NET_RAW, docs/privileges.md); any other
// failure shows up in discovery or in the run.
func (c *traceConfig) warmUp(src *topology.NetNS) error {
	conn, err := probe.ListenFor(src, c.to)
	if err != nil {
		var capErr *topology.CapabilityError
		if errors.As(err, &capErr) {
			return fmt.Errorf("send the warm-up probe: %w", err)
		}
		return nil
	}
	defer conn.Close()
	cfg := c.probeConfig()
	cfg.Count, cfg.Interval, cfg.Timeout, cfg.RunID = 1, time.Millisecond, warmUpTimeout, 0
	_, _ = probe.Run(context.Background(), conn, cfg) // best effort, see above
	return nil
}
