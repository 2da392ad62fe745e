//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/containerd/containerdtest"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// podRunTimeout bounds one run of the binary against the runtime.
const podRunTimeout = 20 * time.Second

// podFixture is a lab whose node 1 runs containerd (topology/lab/
// containerd), with default/web, a pod the reference bridge plugin wired
// into the node's cni0, and kube-system/kube-proxy, a hostNetwork pod;
// and the binary as shipped.
type podFixture struct {
	lab     *lab.Lab
	node    *lab.Node
	daemon  *containerd.Daemon
	web     *containerd.Sandbox
	proxy   *containerd.Sandbox
	bin     string
	to      string // node 2's pod
	runtime []string
}

func newPodFixture(t *testing.T) *podFixture {
	t.Helper()
	containerdtest.Require(t)
	checkLinksUnchanged(t) // registered first: runs after every other cleanup
	l := labtest.New(t)
	node := l.Nodes[0]
	d := containerdtest.Start(t, node, containerd.Config{}) // the bridge plugin on the lab's cni0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	web, err := d.RunPod(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := d.RunPodWith(ctx, "kube-system", "kube-proxy", containerd.PodOptions{HostNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	return &podFixture{
		lab: l, node: node, daemon: d, web: web, proxy: proxy, bin: buildBinary(t),
		to:      l.Nodes[1].Pod.Addr.String(),
		runtime: []string{"--runtime-endpoint", "unix://" + d.Socket, "--node-netns", node.NSPath},
	}
}

// checkLinksUnchanged fails t if the links of the netns it runs in differ
// once everything else is torn down: the runtime, its plugins and every
// run of the binary must stay in the lab's namespaces.
func checkLinksUnchanged(t *testing.T) {
	t.Helper()
	before := linkNames(t)
	t.Cleanup(func() {
		if after := linkNames(t); !slices.Equal(after, before) {
			t.Errorf("the test's netns had links %v, now %v", before, after)
		}
	})
}

func linkNames(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name+" "+l.Type())
	}
	slices.Sort(names)
	return names
}

// run runs the binary with args and returns its exit code, stdout and
// stderr.
func (f *podFixture) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBounded(t, exec.Command(f.bin, args...))
}

// runBounded runs cmd, bounded by podRunTimeout, and returns its exit
// code, stdout and stderr.
func runBounded(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("run %s: %v", strings.Join(cmd.Args, " "), err)
	}
	timer := time.AfterFunc(podRunTimeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run %s: %v", strings.Join(cmd.Args, " "), err)
	return 0, "", ""
}

// TestPrivilegedPodFlag runs the built binary's --pod against a real
// containerd in a lab node: the pod's netns comes from the runtime, the
// report names the pod, a pod that is not there exits 2 naming the
// closest, a hostNetwork pod is traced from the node netns, and, from a
// kubectl debug node-shaped root (the node's / at /host), nothing but
// --pod and --to is needed. Last, what docs/privileges.md says --pod
// needs beyond --netns: the runtime socket's permission, and
// CAP_SYS_PTRACE for a user other than the sandbox's.
func TestPrivilegedPodFlag(t *testing.T) {
	f := newPodFixture(t)
	t.Run("trace", f.testTrace)
	t.Run("path", f.testPath)
	t.Run("not found", f.testNotFound)
	t.Run("hostNetwork", f.testHostNetwork)
	t.Run("from /host", f.testDebugNode)
	t.Run("privileges", f.testPrivileges) // last: it opens the socket to a group
}

// testTrace: trace --pod from the pod the runtime runs: the pod's eth0 in
// its own netns, then the veth, the bridge, the VXLAN device and the
// uplink in the node's; every probe seen at every point, both ways.
func (f *podFixture) testTrace(t *testing.T) {
	args := append([]string{"trace", "--pod", "default/web", "--to", f.to, "--count", "10", "--interval", "10ms", "--format", "json"}, f.runtime...)
	code, stdout, stderr := f.run(t, args...)
	if code != cli.ExitOK {
		t.Fatalf("trace --pod: exit %d, stderr:\n%s", code, stderr)
	}
	t.Logf("stderr:\n%s", stderr)
	r := decodeReport(t, stdout)
	checkPoints(t, r, f.node.NS.ID(), false)
	for _, s := range r.Segments {
		if s.Seen != 10 || s.Lost != 0 {
			t.Errorf("segment %s->%s (%s): seen %d lost %d, want 10 and 0", s.From, s.To, s.Direction, s.Seen, s.Lost)
		}
	}
	if got, want := len(r.Segments), 2*len(r.Points)-1; got != want {
		t.Errorf("got %d segments, want %d", got, want)
	}
	if r.Source.Pod != "default/web" || r.Source.SandboxID != f.web.ID || r.Source.HostNetwork {
		t.Errorf("source names pod %q, sandbox %q (hostNetwork %v); want default/web, %s", r.Source.Pod, r.Source.SandboxID, r.Source.HostNetwork, f.web.ID)
	}
	if want := "cnitrace: pod default/web: sandbox " + f.web.ID[:13] + " via containerd "; !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q", want)
	}
}

// checkPoints checks the report's points by kind and netns: the pod's
// eth0 in a netns of its own (or, for a hostNetwork pod, no pod point at
// all), every other point in the node's netns nodeNS.
func checkPoints(t *testing.T, r jsonReport, nodeNS string, hostNetwork bool) {
	t.Helper()
	var kinds []string
	for _, p := range r.Points {
		kinds = append(kinds, p.Kind)
	}
	want := []string{"pod", "veth", "bridge", "vxlan", "uplink"}
	if hostNetwork {
		want = []string{"vxlan", "uplink"}
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("got point kinds %v, want %v", kinds, want)
	}
	for i, p := range r.Points {
		inNode := p.NetNS == nodeNS
		if pod := i == 0 && !hostNetwork; inNode == pod {
			t.Errorf("point %s (%s) is in %s; want it in the node netns %s: %v", p.ID, p.Kind, p.NetNS, nodeNS, !pod)
		}
	}
	if (r.Source.NetNS == nodeNS) != hostNetwork {
		t.Errorf("source netns %s, node netns %s: want them the same only for a hostNetwork pod", r.Source.NetNS, nodeNS)
	}
}

// testPath: path --pod prints the same points, under a line naming the
// pod, and its JSON names the pod in its source.
func (f *podFixture) testPath(t *testing.T) {
	code, stdout, stderr := f.run(t, append([]string{"path", "--pod", "default/web", "--to", f.to}, f.runtime...)...)
	if code != cli.ExitOK {
		t.Fatalf("path --pod: exit %d, stderr:\n%s", code, stderr)
	}
	t.Logf("stdout:\n%s", stdout)
	header, table, _ := strings.Cut(stdout, "\n")
	if want := "path to " + f.to + " from pod default/web (sandbox " + f.web.ID[:13] + ") eth0@"; !strings.HasPrefix(header, want) {
		t.Errorf("got header %q, want it to start with %q", header, want)
	}
	table, turn, _ := strings.Cut(table, "beyond ")
	if got := strings.Count(table, "\n"); got != 6 { // the column names and five points
		t.Errorf("got %d lines of points, want 6:\n%s", got, table)
	}
	if !strings.HasPrefix(turn, "p4 the probes turn around in network") {
		t.Errorf("got %q after the points, want the turnaround beyond p4 (network)", turn)
	}
	code, stdout, stderr = f.run(t, append([]string{"path", "--pod", "default/web", "--to", f.to, "--format", "json"}, f.runtime...)...)
	var p struct {
		Source struct {
			Pod       string
			SandboxID string `json:"sandbox_id"`
		}
		Points []struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(stdout), &p); code != cli.ExitOK || err != nil {
		t.Fatalf("path --pod --format json: exit %d, %v; stderr:\n%s", code, err, stderr)
	}
	if p.Source.Pod != "default/web" || p.Source.SandboxID != f.web.ID || len(p.Points) != 5 {
		t.Errorf("path JSON names pod %q (sandbox %q) with %d points, want default/web (%s) with 5", p.Source.Pod, p.Source.SandboxID, len(p.Points), f.web.ID)
	}
}

// testNotFound: a pod the runtime does not run exits 2 with one error
// line naming the namespace searched and the closest names, and a hint.
func (f *podFixture) testNotFound(t *testing.T) {
	for _, tc := range []struct {
		pod  string
		want []string
	}{
		{"default/nosuch", []string{`no pod sandbox named "nosuch" in namespace "default" (2 listed in all namespaces)`}},
		{"kube-proxy", []string{`no pod sandbox named "kube-proxy" in namespace "default"`, "closest: kube-system/kube-proxy"}},
		{"default/wbe", []string{"closest: default/web"}},
	} {
		code, stdout, stderr := f.run(t, append([]string{"trace", "--pod", tc.pod, "--to", f.to}, f.runtime...)...)
		errLine, hintLine := lastErrorLines(stderr)
		t.Logf("--pod %s: exit %d: %s", tc.pod, code, errLine)
		if code != cli.ExitUsage || stdout != "" {
			t.Errorf("--pod %s: exit %d, stdout %q; want exit %d and no report", tc.pod, code, stdout, cli.ExitUsage)
		}
		for _, w := range append(tc.want, "via containerd ") {
			if !strings.Contains(errLine, w) {
				t.Errorf("--pod %s: error line %q does not say %q", tc.pod, errLine, w)
			}
		}
		if !strings.Contains(hintLine, "kubectl get pod") {
			t.Errorf("--pod %s: got hint %q, want one saying how to find the pod's node", tc.pod, hintLine)
		}
	}
}

// testHostNetwork: a hostNetwork pod's trace is the node's own, from the
// node netns, and says so; told of another node netns, cnitrace refuses
// before anything is sent.
func (f *podFixture) testHostNetwork(t *testing.T) {
	args := append([]string{"trace", "--pod", "kube-system/kube-proxy", "--to", f.to, "--count", "10", "--interval", "10ms", "--format", "json"}, f.runtime...)
	code, stdout, stderr := f.run(t, args...)
	if code != cli.ExitOK {
		t.Fatalf("trace --pod of a hostNetwork pod: exit %d, stderr:\n%s", code, stderr)
	}
	t.Logf("stderr:\n%s", stderr)
	if want := "cnitrace: pod kube-system/kube-proxy is a hostNetwork pod: it shares the node netns " + f.node.NS.ID() + ", so this is a hostNetwork trace"; !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q", want)
	}
	r := decodeReport(t, stdout)
	checkPoints(t, r, f.node.NS.ID(), true)
	if r.Source.Pod != "kube-system/kube-proxy" || !r.Source.HostNetwork || r.Probes.Received != 10 {
		t.Errorf("source %+v, %d of 10 answered; want kube-system/kube-proxy, hostNetwork, all answered", r.Source, r.Probes.Received)
	}

	other := []string{"trace", "--pod", "kube-system/kube-proxy", "--to", f.to, "--runtime-endpoint", "unix://" + f.daemon.Socket, "--node-netns", f.lab.Nodes[1].NSPath}
	code, _, stderr = f.run(t, other...)
	errLine, _ := lastErrorLines(stderr)
	if code != cli.ExitUsage || !strings.Contains(errLine, "a hostNetwork pod, in the node netns "+f.node.NS.ID()) {
		t.Errorf("with node 2's netns: exit %d, %q; want exit 2 saying the pod is in node 1's", code, errLine)
	}
}

// debugNodeScript runs as `sh -c debugNodeScript sh ROOT SOCKET ARGS...`
// in a fresh private mount namespace inside the node's netns. It shapes
// ROOT as a `kubectl debug node/... --profile=sysadmin` container sees
// its world: its own / (ROOT, holding the cnitrace binary and a /proc),
// the node's / at /host, with the runtime's socket at its usual path
// (the harness's socket bound there) and the node's /proc; the host
// network is the namespace it runs in. Then it runs ROOT/cnitrace with
// ARGS there. Everything it mounts goes with the mount namespace when the
// command exits.
const debugNodeScript = `set -eu
root=$1 sock=$2
shift 2
mount --bind "$sock" "$root/host/run/containerd/containerd.sock"
mount --rbind /proc "$root/host/proc"
mount --rbind /proc "$root/proc"
exec chroot "$root" /cnitrace "$@"
`

// testDebugNode runs the binary as in a kubectl debug node pod, with
// nothing but --pod and --to (and a short run): it must find the runtime
// socket under /host and the pod's netns under /host/proc, the node
// being the netns it runs in.
func (f *podFixture) testDebugNode(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"proc", "host/proc", "host/run/containerd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "host/run/containerd/containerd.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(f.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cnitrace"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--net=" + f.node.NSPath, "--", sbinTool(t, "unshare"), "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", debugNodeScript, "sh", root, f.daemon.Socket,
		"trace", "--pod", "default/web", "--to", f.to, "--count", "10", "--interval", "10ms"}
	cmd := exec.Command(sbinTool(t, "nsenter"), args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	code, stdout, stderr := runBounded(t, cmd)
	t.Logf("cnitrace trace --pod default/web --to %s --count 10 --interval 10ms, in a kubectl debug node-shaped root: exit %d\nstderr:\n%s\nstdout:\n%s", f.to, code, stderr, stdout)
	if code != cli.ExitOK {
		t.Fatalf("exit %d, want %d", code, cli.ExitOK)
	}
	for _, want := range []string{
		"cnitrace: reading the node's files under /host",
		"cnitrace: pod default/web: sandbox " + f.web.ID[:13] + " via containerd ",
		" at unix:///host/run/containerd/containerd.sock, netns /host/proc/",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
	header, _, _ := strings.Cut(stdout, "\n")
	if want := "cnitrace: 10 probes to " + f.to + " from pod default/web (sandbox " + f.web.ID[:13] + ") eth0@"; !strings.HasPrefix(header, want) || !strings.HasSuffix(header, ": 10 answered, 0 lost") {
		t.Errorf("got header %q, want %q... with 10 answered, 0 lost", header, want)
	}
	if got, want := textPoints(stdout, f.node.NS.ID()), []string{"pod", "veth@node", "bridge@node", "vxlan@node", "uplink@node"}; !slices.Equal(got, want) {
		t.Errorf("the report's points are %v, want %v", got, want)
	}
}

// textPoints returns the kinds of the points a text report lists, each
// with "@node" when the point is in the netns nodeNS.
func textPoints(report, nodeNS string) []string {
	_, rest, _ := strings.Cut(report, "\npoints:\n")
	var kinds []string
	for _, line := range strings.Split(rest, "\n") {
		f := strings.Fields(line) // p0  eth0@net:[...]  pod  request ...
		if len(f) < 3 || !strings.HasPrefix(f[0], "p") {
			break
		}
		kind := f[2]
		if strings.HasSuffix(f[1], "@"+nodeNS) {
			kind += "@node"
		}
		kinds = append(kinds, kind)
	}
	return kinds
}

// sbinTool finds a util-linux or coreutils program that may be in an
// sbin directory a test's PATH lacks; the containerd harness's Require
// has made sure nsenter and unshare are installed.
func sbinTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	t.Fatalf("%s not found", name)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// testPrivileges checks what --pod needs beyond what --netns does
// (docs/privileges.md, "--pod"): write permission on the runtime's
// socket, which no capability gives (as nobody with every capability of
// the table but not in the socket's group: exit 1 and the hint saying
// so), and CAP_SYS_PTRACE to open /proc/PID/ns/net of a sandbox of
// another user (nobody without it: exit 1 naming it). Root needs no
// CAP_SYS_PTRACE here: the sandbox's pause process holds fewer
// capabilities than root without it, and the kernel lets such a
// process's netns be opened.
func (f *podFixture) testPrivileges(t *testing.T) {
	capsh, setcap := libcapTool(t, "capsh"), libcapTool(t, "setcap")
	copies := setcapDir(t)
	args := append([]string{"trace", "--pod", "default/web", "--to", f.to, "--count", "3", "--interval", "10ms"}, f.runtime...)
	all := []string{"CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}
	for d := filepath.Dir(f.daemon.Socket); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil { // nobody may reach the socket, not list its directories
			t.Fatal(err)
		}
	}
	run := func(name string, cmd *exec.Cmd, wantCode int, want string) {
		t.Helper()
		code, stderr := runPriv(t, cmd)
		t.Logf("%s: exit %d: %s", name, code, lastLine(stderr))
		if code != wantCode || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d, want %d with %q; stderr:\n%s", name, code, wantCode, want, stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*podRunTimeout)
	defer cancel()
	run("nobody, all capabilities, not in the socket's group", asNobodyWith(t, ctx, setcap, copies, f.bin, all, args...),
		cli.ExitFailure, "hint: connecting to the runtime's socket needs write permission on it")
	if err := os.Chown(f.daemon.Socket, 0, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.daemon.Socket, 0o660); err != nil {
		t.Fatal(err)
	}
	run("nobody in the socket's group, all capabilities", asNobodyWith(t, ctx, setcap, copies, f.bin, all, args...), cli.ExitOK, "capturing on 5 interfaces")
	run("nobody in the socket's group, without CAP_SYS_PTRACE", asNobodyWith(t, ctx, setcap, copies, f.bin, all[:3], args...),
		cli.ExitFailure, "permission denied (needs CAP_SYS_PTRACE)")
	run("root without CAP_SYS_PTRACE", underCapsh(ctx, capsh, []string{"cap_sys_ptrace"}, f.bin, args...), cli.ExitOK, "capturing on 5 interfaces")
}
