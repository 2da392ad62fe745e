package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
)

// faultSynopsis is the fault flags' synopsis; docs/lab.md explains them.
const faultSynopsis = "[--delay WHERE=DURATION]... [--loss WHERE=P]... [--bloat N] [--deny icmp]"

// addFaultFlags adds --delay, --loss, --bloat and --deny, which fill f.
func addFaultFlags(fs *flag.FlagSet, f *lab.Faults) {
	fs.Func("delay", "delay frames on the network between the nodes: `WHERE=DURATION`, WHERE network, network-request or network-reply, "+
		"DURATION like 2ms, 500us or 0 (at most 1s); repeatable", f.SetDelay)
	fs.Func("loss", "drop packets at random: `WHERE=P`, WHERE network[-request|-reply] (frames between the nodes) or "+
		"forward[-request|-reply] (ICMP in node 1's FORWARD chain) or pod[-request|-reply] (in node 1's pod: OUTPUT, INPUT), P like 0.05 or 5%; repeatable", f.SetLoss)
	fs.IntVar(&f.ForwardRules, "bloat", 0, fmt.Sprintf("load `N` non-matching rules into node 1's FORWARD chain (0 to %d)", lab.MaxBloatRules))
	fs.Func("deny", "deny `icmp` as a NetworkPolicy does: node 1's FORWARD chains DROP the echo requests of its pods (TCP and UDP pass)", f.SetDeny)
}

// checkFaults turns an out-of-range fault (only --bloat can be) into a
// usage error.
func checkFaults(cmd string, f lab.Faults) error {
	if err := f.Validate(); err != nil {
		return cli.Usagef("%s: invalid --bloat: %v (see 'cnitrace-lab %s --help')", cmd, err, cmd)
	}
	return nil
}

// layoutSynopsis is the --layout flag's synopsis.
const layoutSynopsis = "[--layout flannel|routed]"

// addLayoutFlag adds --layout, which fills l, and the --topology it was
// called before, which still works for one release but says so on stderr.
func addLayoutFlag(fs *flag.FlagSet, l *lab.Layout, stderr io.Writer) {
	set := func(s string) error {
		v, err := lab.ParseLayout(s)
		*l = v
		return err
	}
	fs.Func("layout", "how pods are wired: `flannel` (bridge cni0, VXLAN flannel.1 on UDP 8472; the default) or "+
		"routed (Calico style: proxy-ARP veth, /32 and /128 routes, no bridge, VXLAN on UDP 4789); both dual-stack", set)
	fs.Func("topology", "the old name of --layout; it goes away in the next release", func(s string) error {
		fmt.Fprintf(stderr, "%s: note: --topology is now --layout; --topology goes away in the next release\n", program)
		return set(s)
	})
}

// wireCommand returns how the lab runs its delay line in the background:
// this binary again, as `cnitrace-lab wire`.
func wireCommand() (func(string, lab.Network) *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the background delay line: %w", err)
	}
	return func(name string, n lab.Network) *exec.Cmd {
		args := append([]string{"wire", "--lab", name}, lab.Faults{Network: n}.Flags()...)
		return exec.Command(exe, args...)
	}, nil
}

// backendCommand returns how the lab runs its backends' TCP servers in
// the background: this binary again, as `cnitrace-lab backends`.
func backendCommand() (func(string) *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the background backends: %w", err)
	}
	return func(name string) *exec.Cmd { return exec.Command(exe, "backends", "--lab", name) }, nil
}

func labUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := lab.Config{}
	const synopsis = "[--name NAME] " + layoutSynopsis + " [--service] [--service-mode M] [--backends] [--external] " + faultSynopsis
	fs := cli.NewFlagSet("up")
	fs.StringVar(&cfg.Name, "name", "", "lab `name` (default: cnitrace-<random>); [a-z0-9-], at most 24 characters")
	addLayoutFlag(fs, &cfg.Layout, stderr)
	fs.BoolVar(&cfg.Service, "service", false, "a ClusterIP Service at "+lab.ServiceAddr.String()+", its rules on every node as kube-proxy writes them: "+
		"TCP 80 and UDP 53 only, over node 2's two pods, which serve (implies --backends); ICMP is not translated")
	fs.Func("service-mode", "which kube-proxy `mode` builds the Service (implies --service): iptables (the default) or nftables", func(s string) error {
		m, err := lab.ParseServiceMode(s)
		cfg.Service, cfg.ServiceMode = true, m
		return err
	})
	fs.BoolVar(&cfg.Backends, "backends", false, fmt.Sprintf("every pod serves TCP %d (it answers with its address) and DNS on port %d (dnsmasq, zone %s); "+
		"--service implies it", lab.BackendPort, lab.DNSPort, lab.DNSZone))
	fs.BoolVar(&cfg.External, "external", false, "add an external host "+lab.ExternalAddr.String()+" behind node 1's "+lab.ExternalLink+", which masquerades pod traffic to it")
	addFaultFlags(fs, &cfg.Faults)
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := checkFaults("up", cfg.Faults); err != nil {
		return err
	}
	if cfg.Name != "" {
		if err := lab.ValidateName(cfg.Name); err != nil {
			return cli.Usagef("up: %v", err)
		}
	}
	var err error
	if cfg.WireCommand, err = wireCommand(); err != nil {
		return err
	}
	if cfg.BackendCommand, err = backendCommand(); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "cnitrace-lab: building the two-node lab...")
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		return labError(err)
	}
	// The namespaces stay pinned in /run/netns; our handles close at exit.
	n1, n2 := l.Nodes[0], l.Nodes[1]
	fmt.Fprintf(stdout, "lab %s (%s) is up: pod %s on node 1, pod %s on node 2\n", l.Name, l.Layout, n1.Pod.Addr, n2.Pod.Addr)
	if n2.Pod.Addr6.IsValid() {
		fmt.Fprintf(stdout, "IPv6: pod %s on node 1, pod %s on node 2 (trace with --to %s)\n", n1.Pod.Addr6, n2.Pod.Addr6, n2.Pod.Addr6)
	}
	printFaults(stdout, l)
	fmt.Fprintf(stdout, "trace across it:\n  cnitrace trace %s\n", strings.Join(l.TraceArgs(), " "))
	source := l.TraceArgs()[:4] // --netns POD --node-netns NODE
	printBackends(stdout, l)
	if l.Service.IsValid() {
		printService(stdout, l)
	}
	if l.External != nil {
		fmt.Fprintf(stdout, "out of the cluster (MASQUERADE on %s):\n  cnitrace trace %s --to %s\n", lab.ExternalLink, strings.Join(source, " "), l.External.Addr)
	}
	fmt.Fprintf(stdout, "remove it:\n  cnitrace-lab down %s\n", l.Name)
	return nil
}

// printBackends says what the pods of l serve and where their pid files
// are.
func printBackends(stdout io.Writer, l *lab.Lab) {
	if !l.Backends {
		return
	}
	fmt.Fprintf(stdout, "backends: every pod serves TCP %d (answers with its address) and DNS on %d (dnsmasq, zone %s, %s names the pod); pid files in %s/\n",
		lab.BackendPort, lab.DNSPort, lab.DNSZone, lab.WhoamiName, lab.RunDir(l.Name))
}

// printService says how the Service of l translates, and how to try it.
func printService(stdout io.Writer, l *lab.Lab) {
	var ports []string
	for _, p := range lab.ServicePorts {
		var eps []string
		for _, ep := range l.ServiceEndpoints() {
			eps = append(eps, netip.AddrPortFrom(ep, p.TargetPort).String())
		}
		ports = append(ports, fmt.Sprintf("%s/%d -> %s", p.Protocol, p.Port, strings.Join(eps, " ")))
	}
	fmt.Fprintf(stdout, "service %s (kube-proxy %s mode): %s; ICMP is not translated\n", l.Service, l.ServiceMode, strings.Join(ports, ", "))
	n1 := l.Nodes[0]
	for _, p := range lab.ServicePorts {
		fmt.Fprintf(stdout, "  cnitrace trace --netns %s --node-netns %s --to %s --proto %s --port %d\n", n1.Pod.NSPath, n1.NSPath, l.Service, p.Protocol, p.Port)
	}
	fmt.Fprintf(stdout, "  ip netns exec %s dig +short @%s %s\n", n1.Pod.Name, l.Service, lab.WhoamiName)
}

// printFaults says which faults l has and where its delay line runs.
func printFaults(stdout io.Writer, l *lab.Lab) {
	if flags := l.Faults.Flags(); len(flags) > 0 {
		fmt.Fprintf(stdout, "faults: %s\n", strings.Join(flags, " "))
	}
	if l.Wire != nil {
		fmt.Fprintf(stdout, "delay line: in the background, pid in %s, log in %s; 'cnitrace-lab down %s' stops it\n",
			lab.WirePIDFile(l.Name), lab.WireLogFile(l.Name), l.Name)
	}
}

// labFault replaces the faults of a standing lab.
func labFault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f lab.Faults
	var clear bool
	const synopsis = "[NAME] " + faultSynopsis + " | --clear"
	fs := cli.NewFlagSet("fault")
	addFaultFlags(fs, &f)
	fs.BoolVar(&clear, "clear", false, "remove every fault, the wire too: the lab is as 'lab up' builds it without flags")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := cli.ParseFlags(program, fs, args, synopsis, stdout); err != nil {
		return err
	}
	if err := checkFaults("fault", f); err != nil {
		return err
	}
	if clear == (f != lab.Faults{}) {
		return cli.Usagef("fault: give faults to set, or --clear (see 'cnitrace-lab fault --help')")
	}
	name, err := standingLab("fault", name)
	if err != nil {
		return err
	}
	l, err := lab.Open(name)
	if err != nil {
		return labError(err)
	}
	defer l.Close() // releases our handles; the lab and its delay line stay
	if l.WireCommand, err = wireCommand(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "cnitrace-lab: setting the faults of lab %s...\n", name)
	if err := l.SetFaults(ctx, f); err != nil {
		return err
	}
	if clear {
		fmt.Fprintf(stdout, "lab %s has no faults\n", name)
		return nil
	}
	fmt.Fprintf(stdout, "lab %s: faults set\n", name)
	printFaults(stdout, l)
	return nil
}

// labWire runs the delay line of a standing lab until SIGINT or SIGTERM:
// the background process lab up and lab fault start.
func labWire(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f lab.Faults
	var name string
	fs := cli.NewFlagSet("wire")
	fs.StringVar(&name, "lab", "", "`name` of the lab whose wire to run")
	addFaultFlags(fs, &f)
	if err := cli.ParseFlags(program, fs, args, "--lab NAME [--delay WHERE=DURATION]... [--loss WHERE=P]...", stdout); err != nil {
		return err
	}
	if name == "" || f.ForwardRequestLoss != 0 || f.ForwardReplyLoss != 0 || f.ForwardRules != 0 || f.DenyICMP {
		return cli.Usagef("wire: give --lab NAME, and only network delays and losses")
	}
	fmt.Fprintf(stderr, "cnitrace-lab: delay line of lab %s running (pid %d): %s\n", name, os.Getpid(), strings.Join(f.Flags(), " "))
	stats, err := lab.ServeWire(ctx, name, f.Network)
	fmt.Fprintf(stderr, "cnitrace-lab: delay line of lab %s stopped: %v\n", name, stats)
	return err
}

// labBackends serves the TCP backends of a standing lab until SIGINT or
// SIGTERM: the background process lab up starts.
func labBackends(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var name string
	fs := cli.NewFlagSet("backends")
	fs.StringVar(&name, "lab", "", "`name` of the lab whose backends to serve")
	if err := cli.ParseFlags(program, fs, args, "--lab NAME", stdout); err != nil {
		return err
	}
	if name == "" {
		return cli.Usagef("backends: give --lab NAME")
	}
	fmt.Fprintf(stderr, "cnitrace-lab: backends of lab %s serving TCP %d (pid %d)\n", name, lab.BackendPort, os.Getpid())
	err := lab.ServeBackends(ctx, name)
	fmt.Fprintf(stderr, "cnitrace-lab: backends of lab %s stopped\n", name)
	return err
}

func labDown(args []string, stdout io.Writer) error {
	if len(args) > 1 {
		return cli.Usagef("down: give at most one lab name")
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	name, err := standingLab("down", name)
	if err != nil {
		return err
	}
	if err := lab.Down(name); err != nil {
		return labError(err)
	}
	fmt.Fprintf(stdout, "lab %s removed\n", name)
	return nil
}

// standingLab returns name, or when it is empty the one lab standing.
func standingLab(cmd, name string) (string, error) {
	if name != "" {
		if err := lab.ValidateName(name); err != nil {
			return "", cli.Usagef("%s: %v", cmd, err)
		}
		return name, nil
	}
	names, err := lab.List()
	if err != nil {
		return "", err
	}
	switch len(names) {
	case 0:
		return "", cli.Usagef("%s: no lab is standing", cmd)
	case 1:
		return names[0], nil
	}
	return "", cli.Usagef("%s: %d labs are standing (%s): name one", cmd, len(names), strings.Join(names, ", "))
}

func labList(stdout io.Writer) error {
	names, err := lab.List()
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return nil
}
