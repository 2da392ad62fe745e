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
	"strconv"
	"syscall"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/probe"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/cri"
)

// traceConfig is everything the trace and path commands were asked to do.
type traceConfig struct {
	netns     string // pod netns file
	pid       int    // or a process in the pod
	procRoot  string
	nodeNetns string // the node's netns file; empty means our own
	to        netip.Addr
	toFlag    string // the flag that gave to: "--to", listen's "--from"
	count     int
	countSet  bool
	duration  time.Duration
	interval  time.Duration
	timeout   time.Duration
	size      int
	format    report.Format
	out       string
	pcap      string      // --pcap: the probes' packets as pcapng
	bundle    string      // --bundle: the evidence tarball
	quiet     bool        // no progress line on stderr
	baseline  bool        // also probe from the node's netns and compare
	proto     probe.Proto // --proto: what the probes are
	port      int         // --port: the target port of TCP and UDP probes
	dnsSuffix string      // --dns-suffix: the domain of DNS probes' names (UDP to 53)
	forMerge  bool        // --for-merge: every probe's stamps in the JSON report
	args      []string    // the command line, for the report's run block

	// --pod: the pod, [NAMESPACE/]NAME, found through the CRI instead of
	// --netns or --pid. runtimeEndpoint overrides the search for the
	// runtime's socket; hostRoot is where the node's / is ("": /host when
	// detected, else /).
	pod             string
	podRef          podRef // pod, parsed
	runtimeEndpoint string
	hostRoot        string
	found           *cri.Pod // the pod --pod found, once resolved
}

// sourceWords is how a command's --help names the pod --pod, --netns and
// --pid say: trace's and path's probe from it, listen's is the probes'
// target.
type sourceWords struct {
	pod   string // --pod's: "the pod to probe from"
	netns string // --netns's and --pid's: "the pod"
}

var (
	traceSource  = sourceWords{pod: "the pod to probe from", netns: "the pod"}
	listenSource = sourceWords{pod: "the pod the probes go to", netns: "the pod the probes go to"}
)

// addSourceFlags registers the flags that say which pod, and which node,
// the command works in, worded as w says.
func addSourceFlags(fs *flag.FlagSet, c *traceConfig, w sourceWords) {
	fs.StringVar(&c.pod, "pod", "", "`[NAMESPACE/]NAME` of "+w.pod+", found through the node's container runtime (CRI); NAMESPACE is default when left out")
	fs.StringVar(&c.runtimeEndpoint, "runtime-endpoint", "", "CRI socket `unix:///PATH` of the node's runtime, for --pod (default: the first that answers of containerd's, CRI-O's, k3s's and cri-dockerd's usual sockets under the host root)")
	fs.StringVar(&c.hostRoot, "host-root", "", "`dir` where the node's / is: --pod reads the runtime's socket and paths under it, trace --bundle the CNI configuration and the ruleset programs (default: /host when it holds the node's /proc, as in a kubectl debug node pod; else /)")
	fs.StringVar(&c.netns, "netns", "", "network namespace `file` of "+w.netns+" (/run/netns/NAME, /proc/PID/ns/net)")
	fs.IntVar(&c.pid, "pid", 0, "`PID` of a process in "+w.netns+" (uses PROC/PID/ns/net)")
	fs.StringVar(&c.procRoot, "proc", "/proc", "`dir` where the host's processes are (with hostPID: /proc)")
	fs.StringVar(&c.nodeNetns, "node-netns", "", "network namespace `file` of the node (default: the one cnitrace runs in)")
}

// toUsage is trace's and path's --to.
const toUsage = "target `IP` address, IPv4 or IPv6: a pod (on another node or this one), a Service address, or a host outside the cluster"

// addProtoFlags registers the flags that say what the probes are: trace
// sends them, path's warm-up probe too (a Service's DNAT is found for its
// protocol and port).
func addProtoFlags(fs *flag.FlagSet, c *traceConfig) {
	fs.Var(protoFlag{&c.proto}, "proto", "probe `protocol`: icmp (echo requests, the default), tcp (SYNs to --port: what a Service or a policy lets through; needs CAP_NET_RAW) or udp (datagrams to --port; to port 53 DNS queries)")
	fs.IntVar(&c.port, "port", 0, "target `port` of tcp and udp probes (required with them, refused with icmp)")
	fs.StringVar(&c.dnsSuffix, "dns-suffix", "", "`domain` the name of a DNS probe (--proto udp --port 53) ends in, one the server answers itself (default "+probe.DefaultDNSSuffix+")")
}

// protoFlag is --proto, parsed by probe.ParseProto.
type protoFlag struct{ p *probe.Proto }

func (f protoFlag) String() string {
	if f.p == nil { // the flag package's zero value, for the default in --help
		return probe.ICMP.String()
	}
	return f.p.String()
}

func (f protoFlag) Set(s string) error {
	p, err := probe.ParseProto(s)
	if err != nil {
		return errors.New("want icmp, tcp or udp")
	}
	*f.p = p
	return nil
}

// validateProto checks --proto, --port and --dns-suffix together; their
// errors are usage errors naming the flag.
func (c *traceConfig) validateProto() error {
	switch {
	case c.proto == probe.ICMP && c.port != 0:
		return cli.Usagef("--port %d: only --proto tcp and udp probes have a port", c.port)
	case c.proto != probe.ICMP && (c.port < 1 || c.port > 65535):
		return cli.Usagef("--port %d: --proto %s needs a port between 1 and 65535", c.port, c.proto)
	case c.dnsSuffix == "":
		return nil
	case c.proto != probe.UDP || c.port != 53:
		return cli.Usagef("--dns-suffix %s: only DNS probes (--proto udp --port 53) have a name", c.dnsSuffix)
	}
	check := probe.Config{Target: c.to, Proto: probe.UDP, Port: 53, DNSSuffix: c.dnsSuffix, Count: 1, Interval: time.Second, Timeout: time.Second, Size: probe.TokenLen}
	if err := check.Validate(); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return cli.Usagef("--dns-suffix %q: %v", c.dnsSuffix, err)
	}
	return nil
}

// flow is what discovery follows a Service's DNAT for: the probes'. An
// ICMP flow names the echo id its probes, the warm-up's first, carry, so
// that discovery can look that one conntrack entry up.
func (c *traceConfig) flow() topology.Flow {
	switch c.proto {
	case probe.TCP:
		return topology.Flow{Proto: topology.ProtoTCP, Port: uint16(c.port)}
	case probe.UDP:
		return topology.Flow{Proto: topology.ProtoUDP, Port: uint16(c.port)}
	}
	return topology.Flow{EchoID: c.probeConfig().ID}
}

// addProbeFlags registers the ping-like flags of trace. --count and
// --duration bound the run, the first reached stopping it; --duration
// alone leaves the count unbounded (countSet says whether --count was
// given).
func addProbeFlags(fs *flag.FlagSet, c *traceConfig, format *string) {
	c.count = 30
	fs.Var(countFlag{c}, "count", "send `N` probes, like ping -c; with --duration and no --count, no limit")
	fs.DurationVar(&c.duration, "duration", 0, "stop sending after this long, like ping -w (0: no limit)")
	fs.DurationVar(&c.interval, "interval", 100*time.Millisecond, fmt.Sprintf("time between probes, like ping -i (at least %dus)", probe.MinInterval.Microseconds()))
	fs.DurationVar(&c.timeout, "timeout", time.Second, "how long each probe waits for its reply, like ping -W; a reply after it is counted late")
	fs.IntVar(&c.size, "size", 56, "ICMP echo data or UDP payload bytes, like ping -s (at least 24; TCP SYNs and DNS queries have a size of their own)")
	fs.StringVar(format, "format", "text", "report `format`: text, json, markdown or html")
	fs.StringVar(&c.out, "out", "", "write the report to `file` instead of stdout")
	fs.StringVar(&c.pcap, "pcap", "", "also write every probe packet seen at every point to `file`, as pcapng (Wireshark, tshark)")
	fs.StringVar(&c.bundle, "bundle", "", "also write the evidence to `file`.tar.gz: the report in every format, the pcapng, the path and the node's network state (docs/bundle.md)")
	fs.BoolVar(&c.quiet, "quiet", false, "print no progress line on stderr")
	fs.BoolVar(&c.baseline, "baseline", false, "also probe the target from the node netns (as a hostNetwork pod would), interleaved, and report the pod path's overhead")
}

// validate checks what can be checked without touching the system.
func (c *traceConfig) validate(to, format string) error {
	if err := c.validateSource("say where to probe from"); err != nil {
		return err
	}
	if to == "" {
		return cli.Usagef("say what to probe: --to IP")
	}
	if err := c.validatePeer("--to", "target", to); err != nil {
		return err
	}
	if format != "" {
		var err error
		if c.format, err = report.ParseFormat(format); err != nil {
			return cli.Usagef("--format: %v", err)
		}
	}
	return c.validateProto()
}

// validatePeer parses the peer address s, given as flag (trace's --to,
// the probes' target; listen's --from, their source), into c.to, and
// checks that it can be a peer on any system; its errors are usage errors
// naming flag.
func (c *traceConfig) validatePeer(flag, role, s string) error {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return cli.Usagef("%s %q: not an IP address", flag, s)
	}
	c.to, c.toFlag = addr.Unmap(), flag
	if c.to.Zone() != "" {
		return cli.Usagef("%s %s: a zoned (link-local) %s is not supported: its zone names an interface of the pod's netns, not ours", flag, s, role)
	}
	if why := notPeer(c.to); why != "" {
		return cli.Usagef("%s %s: %s; give the address of another pod, a Service or a host", flag, s, why)
	}
	return nil
}

// validateSource checks that exactly one of --pod, --netns and --pid says
// which pod the command works in, and the flags that go with --pod; none
// is a usage error starting with missing.
func (c *traceConfig) validateSource(missing string) error {
	var given []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"--pod", c.pod != ""}, {"--netns", c.netns != ""}, {"--pid", c.pid != 0}} {
		if f.set {
			given = append(given, f.name)
		}
	}
	switch len(given) {
	case 0:
		return cli.Usagef("%s: --pod [NAMESPACE/]NAME, --netns FILE or --pid PID", missing)
	case 2:
		return cli.Usagef("%s and %s both given: use one of --pod, --netns and --pid", given[0], given[1])
	case 3:
		return cli.Usagef("--pod, --netns and --pid all given: use one")
	}
	if c.pid < 0 {
		return cli.Usagef("--pid %d: must be a positive process id", c.pid)
	}
	return c.validatePod()
}

// countFlag is --count, an int flag that also notes it was given.
type countFlag struct{ c *traceConfig }

func (f countFlag) String() string {
	if f.c == nil { // the flag package's zero value, for the default in --help
		return "0"
	}
	return strconv.Itoa(f.c.count)
}

func (f countFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	f.c.count, f.c.countSet = n, true
	return nil
}

// probeConfig is the probe run asked for: --duration without --count
// sends for that long, however many probes that takes.
func (c *traceConfig) probeConfig() probe.Config {
	count := c.count
	if c.duration > 0 && !c.countSet {
		count = 0
	}
	return probe.Config{
		Target: c.to, Proto: c.proto, Port: c.port, DNSSuffix: c.dnsSuffix,
		Count: count, Duration: c.duration, Interval: c.interval, Timeout: c.timeout,
		Size: c.size, ID: uint16(os.Getpid() & 0xffff),
	}
}

// namespaces opens the pod's and the node's network namespaces. A path that
// does not exist or is not a network namespace is a usage error. A
// hostNetwork --pod's netns must be the node's.
func (c *traceConfig) namespaces(ctx context.Context, stderr io.Writer) (pod, node *topology.NetNS, err error) {
	if c.pod != "" {
		pod, err = c.openPodNetNS(ctx, stderr)
	} else {
		pod, err = c.podNetNS()
	}
	if err != nil {
		return nil, nil, err
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
	if c.found != nil && c.found.HostNetwork {
		if err := hostNetworkTrace(c.found, pod, node, stderr); err != nil {
			pod.Close()
			node.Close()
			return nil, nil, err
		}
	}
	return pod, node, nil
}

// resolve opens the namespaces, checks that the target can be a peer of
// the source (a *topology.NotPeerError is a usage error) before anything
// is sent to it, and discovers the path between them. The caller closes
// pod and node when err is nil. Progress (the pod --pod found) goes to
// stderr.
func (c *traceConfig) resolve(ctx context.Context, stderr io.Writer) (pod, node *topology.NetNS, path *topology.Path, err error) {
	if pod, node, err = c.namespaces(ctx, stderr); err != nil {
		return nil, nil, nil, err
	}
	if c.baseline && pod.ID() == node.ID() {
		pod.Close()
		node.Close()
		return nil, nil, nil, cli.Usagef("--baseline: the source netns %s is the node's: a hostNetwork trace has nothing to compare with (trace from a pod's netns)", pod.ID())
	}
	if path, err = c.discover(pod, node); err != nil {
		pod.Close()
		node.Close()
		return nil, nil, nil, c.peerError(err)
	}
	return pod, node, path, nil
}

// discover checks that the target can be a peer of pod, sends the
// warm-up probe and discovers the path, with one topology.PathFinder for
// both: each namespace is entered, and each netlink socket made, once.
func (c *traceConfig) discover(pod, node *topology.NetNS) (*topology.Path, error) {
	f, err := topology.OpenPathFinder(pod, node)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Before the warm-up probe: nothing is sent to a broadcast address.
	if err := f.CheckPeer(c.to); err != nil {
		return nil, err
	}
	sport, err := c.warmUp(pod)
	if err != nil {
		return nil, err
	}
	flow := c.flow()
	flow.SrcPort = sport
	path, err := f.Discover(c.to, flow)
	if err != nil && c.proto == probe.ICMP && errors.Is(err, syscall.ENETUNREACH) {
		err = &noICMPRouteError{err: err, target: c.to}
	}
	return path, err
}

// noICMPRouteError is a discovery for ICMP probes that found no route to
// the target in the node: a ClusterIP under kube-proxy has none, nothing
// in the node translates ICMP to it, and only TCP and UDP reach its
// endpoints. The hint says so.
type noICMPRouteError struct {
	err    error
	target netip.Addr
}

func (e *noICMPRouteError) Error() string { return e.err.Error() }
func (e *noICMPRouteError) Unwrap() error { return e.err }

func nsError(role string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return cli.Usagef("%s netns: %v (check the path; 'ip netns list' shows named ones)", role, err)
	case errors.Is(err, topology.ErrNotNetNS):
		return cli.Usagef("%s netns: %v (want /run/netns/NAME or /proc/PID/ns/net)", role, err)
	}
	return fmt.Errorf("%s netns: %w", role, err)
}

// podNetNS opens the netns to probe from: --netns, or --pid's through
// --proc. A missing --proc or --pid process says which of the two is
// wrong, not which file is missing.
func (c *traceConfig) podNetNS() (*topology.NetNS, error) {
	if c.pid == 0 {
		ns, err := topology.OpenNetNS(c.netns)
		if err != nil {
			return nil, nsError("pod", err)
		}
		return ns, nil
	}
	ns, err := topology.NetNSOfPID(c.procRoot, c.pid)
	if errors.Is(err, os.ErrNotExist) {
		if perr := c.missingProcess(); perr != nil {
			return nil, perr
		}
	}
	if err != nil {
		return nil, nsError("pod", err)
	}
	return ns, nil
}

// missingProcess returns the usage error for a --pid whose netns file
// does not exist because --proc is not a directory or holds no such
// process, or nil when both are there.
func (c *traceConfig) missingProcess() error {
	if fi, err := os.Stat(c.procRoot); err != nil || !fi.IsDir() {
		return cli.Usagef("--proc %s: no such directory (the host's processes are under /proc, with hostPID on Kubernetes)", c.procRoot)
	}
	if _, err := os.Stat(filepath.Join(c.procRoot, strconv.Itoa(c.pid))); errors.Is(err, os.ErrNotExist) {
		return cli.Usagef("--pid %d: process %d does not exist under %s (check the PID with 'ps'; from a pod, the host's processes show only with hostPID)", c.pid, c.pid, c.procRoot)
	}
	return nil
}

// notPeer says why addr can be no peer of a probe on any system, or "".
// What the pod's own addresses and subnets make of a target is for
// topology.CheckPeer to say.
func notPeer(addr netip.Addr) string {
	switch {
	case addr.IsUnspecified():
		return "the unspecified address names no host"
	case addr.IsLoopback():
		return "a loopback address never leaves the pod's netns"
	case addr.IsMulticast():
		return "a multicast address names a group, not one peer"
	case addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address names every host of the link, not one peer"
	}
	return ""
}

// peerError turns topology's *NotPeerError (the peer is the pod's own
// address, or a broadcast address of its subnet) into a usage error
// naming the flag that gave it; other errors pass unchanged.
func (c *traceConfig) peerError(err error) error {
	var np *topology.NotPeerError
	if errors.As(err, &np) {
		return cli.Usagef("%s %s: %s %s, not a peer; give the address of another pod, a Service or a host", c.toFlag, np.Target, np.What, np.NetNS)
	}
	return err
}

// warmUpTimeout bounds the wait for the warm-up probe's reply.
const warmUpTimeout = 200 * time.Millisecond

// warmUpSize is the warm-up probe's size when the command has no --size.
const warmUpSize = 56

// warmUp sends one probe of the run's protocol and port (an echo
// request, a SYN, a datagram) from the source netns to the target before
// discovery, and waits for its reply at most warmUpTimeout: it leaves in
// the node's conntrack the DNAT of a Service address that Discover
// follows for that protocol and port, and in the neighbour tables the
// entries a same-node path is found by. It is best effort, but for a
// missing capability: without it a Service's DNAT is never found and
// discovery follows the untranslated address to the wrong place (path too
// needs CAP_NET_RAW for icmp and tcp, docs/privileges.md); any other
// failure shows up in discovery or in the run. It returns the warm-up's
// source port for a TCP SYN or a UDP datagram (0 for an echo request, or
// when nothing was sent): discovery looks the conntrack entry of that one
// flow up instead of dumping the table.
func (c *traceConfig) warmUp(src *topology.NetNS) (uint16, error) {
	cfg := c.probeConfig()
	cfg.Count, cfg.Duration, cfg.Interval, cfg.Timeout, cfg.RunID = 1, 0, time.Millisecond, warmUpTimeout, 0
	cfg.Size = max(cfg.Size, warmUpSize) // path has no --size
	conn, err := probe.Open(src, cfg)
	if err != nil {
		var capErr *topology.CapabilityError
		if errors.As(err, &capErr) {
			return 0, fmt.Errorf("send the warm-up probe: %w", err)
		}
		return 0, nil
	}
	defer conn.Close()
	res, _ := probe.Run(context.Background(), conn, cfg) // best effort, see above
	if res == nil || len(res.Probes) == 0 {
		return 0, nil
	}
	return res.Probes[0].SrcPort, nil
}
