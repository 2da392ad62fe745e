package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cnitrace/cnitrace/capture"
	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
	"github.com/cnitrace/cnitrace/topology/nodestate"
)

// bundleRule is the comment of a rule the tests add to node 1's FORWARD
// chain: it shows in node/iptables-save.txt, and never in pod/'s, when
// the programs ran in the right namespace. Its conntrack match turns
// connection tracking on in the node's namespace, so that the probes'
// flows have entries.
const bundleRule = "cnitrace-bundle-test"

func addBundleRule(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, iptables := range []string{"iptables", "ip6tables"} {
		cmd := l.Command(t.Context(), l.Nodes[0].NSPath, iptables, "-A", "FORWARD", "-m", "conntrack", "--ctstate", "NEW,ESTABLISHED",
			"-m", "comment", "--comment", bundleRule, "-j", "ACCEPT")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("add the test rule in %s: %v\n%s", l.Nodes[0].Name, err, out)
		}
	}
}

// traceBundle runs a trace with args and --bundle, and returns the
// bundle's members and its top directory.
func traceBundle(t *testing.T, args ...string) ([]string, map[string]bundleFile, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "evidence.tar.gz")
	code, _, stderr := runCLI(t, append([]string{"trace", "--count", "5", "--interval", "10ms", "--bundle", file}, args...)...)
	if code != cli.ExitOK {
		t.Fatalf("trace --bundle: exit code %d, stderr:\n%s", code, stderr)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, files := readBundle(t, f)
	return names, files, checkListed(t, names, files)
}

// The probes' conntrack entry is found for an IPv6 target too (ICMPv6),
// and a hostNetwork trace, from the node's namespace, has node/ alone.
func TestPrivilegedBundleIPv6AndHostNetwork(t *testing.T) {
	l := labtest.New(t)
	addBundleRule(t, l)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	t.Run("ipv6", func(t *testing.T) {
		_, files, top := traceBundle(t, "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", n2.Pod.Addr6.String())
		var ct nodestate.Conntrack
		decode(t, files, top+"node/conntrack.json", &ct)
		if len(ct.Flows) != 1 || ct.Flows[0].Family != "inet6" || ct.Flows[0].Protocol != "ipv6-icmp" ||
			ct.Flows[0].Original.Src != n1.Pod.Addr6.String() || ct.Flows[0].Original.Dst != n2.Pod.Addr6.String() {
			t.Errorf("node/conntrack.json: flows %+v, want the probes' ICMPv6 one", ct.Flows)
		}
		if rules := files[top+"node/ip6tables-save.txt"]; !bytes.Contains(rules.data, []byte(bundleRule)) {
			t.Errorf("node/ip6tables-save.txt lacks the rule added in the node's namespace:\n%s", rules.data)
		}
	})
	t.Run("hostNetwork", func(t *testing.T) {
		names, files, top := traceBundle(t, "--netns", n1.NSPath, "--node-netns", n1.NSPath, "--to", n2.Pod.Addr.String())
		if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, top+"pod/") }) {
			t.Errorf("a hostNetwork bundle has pod/ files: %q", names)
		}
		_, gaps := readmeFiles(t, string(files[top+"README.txt"].data))
		if !slices.ContainsFunc(gaps, func(g string) bool { return strings.HasPrefix(g, "pod/: the source netns") }) {
			t.Errorf("README.txt does not say why there is no pod/: %q", gaps)
		}
		var ct nodestate.Conntrack
		decode(t, files, top+"node/conntrack.json", &ct)
		if len(ct.Flows) != 1 || ct.Flows[0].Original.Dst != n2.Pod.Addr.String() {
			t.Errorf("node/conntrack.json: flows %+v, want the probes' one", ct.Flows)
		}
	})
}

// TestPrivilegedBundle runs a trace with --bundle across the lab and reads
// the bundle back with archive/tar and with tar: every file README.txt
// lists is there and parses, the node's state is the lab's, and no value
// of the environment is anywhere in it.
func TestPrivilegedBundle(t *testing.T) {
	l := labtest.New(t)
	addBundleRule(t, l)
	canary := randomCanary(t)
	t.Setenv("CNITRACE_BUNDLE_CANARY", canary)
	file := filepath.Join(t.TempDir(), "evidence.tar.gz")

	args := append([]string{"trace", "--count", "30", "--interval", "10ms", "--bundle", file}, l.TraceArgs()...)
	code, stdout, stderr := runCLI(t, args...)
	if code != cli.ExitOK {
		t.Fatalf("trace --bundle: exit code %d, stderr:\n%s", code, stderr)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a 30-probe bundle: %d bytes", fi.Size())
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, files := readBundle(t, f)
	top := checkListed(t, names, files)
	checkLabState(t, l, top, files)

	if got := string(files[top+"report.txt"].data); got != stdout {
		t.Errorf("report.txt differs from the report the run printed:\n%s\nwant\n%s", got, stdout)
	}
	var obs int
	if pcap, ok := files[top+"capture.pcapng"]; !ok {
		t.Error("no capture.pcapng")
	} else if o, err := capture.ReadPcapNG(bytes.NewReader(pcap.data)); err != nil {
		t.Errorf("capture.pcapng does not parse: %v", err)
	} else {
		obs = len(o)
	}
	if want := 30 * 2 * 5; obs != want { // every probe, request and reply, at each of the 5 points
		t.Errorf("capture.pcapng holds %d packets, want %d", obs, want)
	}
	for _, n := range names {
		if bytes.Contains(files[n].data, []byte(canary)) {
			t.Errorf("%s holds the value of an environment variable (%s)", n, canary)
		}
	}
	tarList(t, file, names)
}

// checkListed checks that the bundle has one top directory, that
// README.txt lists exactly its files, that every JSON file parses and that
// every report format whose renderer exists is there. It returns the top
// directory, with its slash.
func checkListed(t *testing.T, names []string, files map[string]bundleFile) string {
	t.Helper()
	top, _, _ := strings.Cut(names[0], "/")
	top += "/"
	if !strings.HasPrefix(top, "cnitrace-") || files[names[0]].hdr.Name != top {
		t.Fatalf("the bundle does not open with its top directory cnitrace-TIME-ID/: %q", names[:min(3, len(names))])
	}
	listed, gaps := readmeFiles(t, string(files[top+"README.txt"].data))
	t.Logf("not collected:\n%s", strings.Join(gaps, "\n"))
	for _, l := range listed {
		f, ok := files[top+l]
		switch {
		case !ok:
			t.Errorf("README.txt lists %s, which is not in the bundle", l)
		case strings.HasSuffix(l, ".json") && !json.Valid(f.data):
			t.Errorf("%s does not parse as JSON", l)
		}
	}
	for _, n := range names {
		if rel := strings.TrimPrefix(n, top); !strings.HasSuffix(n, "/") && !slices.Contains(listed, rel) {
			t.Errorf("%s is in the bundle but README.txt does not list it", rel)
		}
	}
	for _, f := range report.Formats() {
		name := "report" + f.Ext()
		if err := report.Render(io.Discard, testResult(), f); err != nil {
			t.Logf("not checking %s: its renderer fails (%v)", name, err)
			continue
		}
		if _, ok := files[top+name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	for _, want := range []string{"version.txt", "path.json", "capture.pcapng", "node/links.json", "node/conntrack.json"} {
		if !slices.Contains(listed, want) {
			t.Errorf("no %s", want)
		}
	}
	return top
}

// checkLabState checks the node-state files against what the lab built:
// node 1's pod's address on eth0, node 1's route to node 2's pods by the
// VXLAN device, the bridge and the pod's host veth enslaved to it,
// forwarding on, the probes' conntrack entry, and the rulesets of the
// right namespaces.
func checkLabState(t *testing.T, l *lab.Lab, top string, files map[string]bundleFile) {
	t.Helper()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	var addrs nodestate.Addresses
	decode(t, files, top+"pod/addresses.json", &addrs)
	if !slices.ContainsFunc(addrs.Addresses, func(a nodestate.Address) bool {
		return a.Interface == lab.PodIfName && strings.HasPrefix(a.Address, n1.Pod.Addr.String()+"/")
	}) {
		t.Errorf("pod/addresses.json lacks %s on %s: %+v", n1.Pod.Addr, lab.PodIfName, addrs.Addresses)
	}
	var routes nodestate.Routes
	decode(t, files, top+"node/routes.json", &routes)
	if !slices.ContainsFunc(routes.Routes, func(r nodestate.Route) bool {
		return r.Table == 254 && r.Dst == n2.PodCIDR.String() && r.Dev != nil && r.Dev.Name == lab.VXLANName
	}) {
		t.Errorf("node/routes.json lacks the route to %s by %s: %+v", n2.PodCIDR, lab.VXLANName, routes.Routes)
	}
	var links nodestate.Links
	decode(t, files, top+"node/links.json", &links)
	byName := map[string]nodestate.Link{}
	for _, lk := range links.Links {
		byName[lk.Name] = lk
	}
	if br := byName[lab.BridgeName]; br.Type != "bridge" || len(br.Points) == 0 {
		t.Errorf("node/links.json: %s is %+v, want a bridge on the path", lab.BridgeName, br)
	}
	if v := byName[n1.Pod.HostVeth]; v.Type != "veth" || v.Master == nil || v.Master.Name != lab.BridgeName || v.LinkNetNSID == nil {
		t.Errorf("node/links.json: %s is %+v, want a veth enslaved to %s with its peer's netnsid", n1.Pod.HostVeth, v, lab.BridgeName)
	}
	if vx := byName[lab.VXLANName]; vx.VXLAN == nil || vx.VXLAN.Port != lab.VXLANPort || vx.VXLAN.ID != lab.VNI {
		t.Errorf("node/links.json: %s is %+v, want VXLAN %d on port %d", lab.VXLANName, vx, lab.VNI, lab.VXLANPort)
	}
	var sysctls nodestate.Sysctls
	decode(t, files, top+"node/sysctls.json", &sysctls)
	if v := sysctls.Sysctls["net.ipv4.ip_forward"]; v == nil || *v != "1" {
		t.Errorf("node/sysctls.json: net.ipv4.ip_forward = %v, want 1", v)
	}
	var ct nodestate.Conntrack
	decode(t, files, top+"node/conntrack.json", &ct)
	if !slices.ContainsFunc(ct.Flows, func(f nodestate.Flow) bool {
		return f.Protocol == "icmp" && f.Original.Src == n1.Pod.Addr.String() && f.Original.Dst == n2.Pod.Addr.String()
	}) || len(ct.Flows) != 1 {
		t.Errorf("node/conntrack.json: flows %+v, want the one of the probes", ct.Flows)
	}
	if rules, ok := files[top+"node/iptables-save.txt"]; !ok || !bytes.Contains(rules.data, []byte(bundleRule)) {
		t.Errorf("node/iptables-save.txt lacks the rule %s added in the node's namespace:\n%s", bundleRule, rules.data)
	}
	if rules, ok := files[top+"pod/iptables-save.txt"]; ok && bytes.Contains(rules.data, []byte(bundleRule)) {
		t.Errorf("pod/iptables-save.txt holds the node's rule %s: the program ran in the wrong namespace", bundleRule)
	}
	var path topology.Path
	decode(t, files, top+"path.json", &path)
	if len(path.Points) != 5 || path.Target != n2.Pod.Addr {
		t.Errorf("path.json: %d points to %s, want 5 to %s", len(path.Points), path.Target, n2.Pod.Addr)
	}
}

func decode(t *testing.T, files map[string]bundleFile, name string, v any) {
	t.Helper()
	f, ok := files[name]
	if !ok {
		t.Errorf("no %s in the bundle", name)
		return
	}
	if err := json.Unmarshal(f.data, v); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}

// tarList checks that tar lists the bundle as archive/tar read it.
func tarList(t *testing.T, file string, names []string) {
	t.Helper()
	out, err := exec.Command("tar", "-tzf", file).Output()
	if err != nil {
		t.Fatalf("tar -tzf %s: %v", file, err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, names) {
		t.Errorf("tar -tzf lists %q, want %q", got, names)
	}
}

func randomCanary(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "canary-" + hex.EncodeToString(b)
}

// TestPrivilegedBundleHostRoot takes the bundle of a lab path with the
// node's / elsewhere (a kubectl debug node pod's /host): the programs found
// there run chrooted to it, in the node's and the pod's namespaces, with
// PATH alone; its CNI configuration files are copied, the kubeconfig
// beside them is not.
func TestPrivilegedBundleHostRoot(t *testing.T) {
	l := labtest.New(t)
	root := fakeHostRoot(t)
	canary := randomCanary(t)
	t.Setenv("CNITRACE_BUNDLE_CANARY", canary) // the fake programs print their environment
	n1, n2 := l.Nodes[0], l.Nodes[1]
	path, err := topology.Discover(n1.Pod.NS, n1.NS, n2.Pod.Addr)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "b.tar.gz")
	b, err := openBundle(file, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.abort()
	b.snapshot(t.Context(), &traceConfig{hostRoot: root}, n1.Pod.NS, n1.NS, path, io.Discard)
	if err := b.write(testResult(), path, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := b.commit(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, files := readBundle(t, f)
	top := names[0]
	for name, argv := range map[string]string{
		"node/iptables-save.txt": "/usr/sbin/iptables-save\n",
		"pod/iptables-save.txt":  "/usr/sbin/iptables-save\n",
		"node/nft-ruleset.txt":   "/usr/sbin/nft list ruleset\n",
	} {
		out := string(files[top+name].data)
		for _, want := range []string{"argv: " + argv, "env: PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\ncwd: /\nroot: fake\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, out)
			}
		}
	}
	if _, ok := files[top+"cni/net.d/10-flannel.conflist"]; !ok {
		t.Errorf("no cni/net.d/10-flannel.conflist in %q", names)
	}
	readme := string(files[top+"README.txt"].data)
	_, gaps := readmeFiles(t, readme)
	if !slices.ContainsFunc(gaps, func(g string) bool {
		return strings.HasPrefix(g, "cni/net.d/calico-kubeconfig: not a CNI configuration file")
	}) {
		t.Errorf("README.txt does not say calico-kubeconfig was left out: %q", gaps)
	}
	if !strings.Contains(readme, "read under "+root+".") {
		t.Errorf("README.txt does not say where the node's files were read")
	}
	for _, n := range names {
		if bytes.Contains(files[n].data, []byte("SECRET-TOKEN")) {
			t.Errorf("%s holds the kubeconfig's token", n)
		}
		if bytes.Contains(files[n].data, []byte(canary)) {
			t.Errorf("%s holds the value of an environment variable (%s)", n, canary)
		}
	}
}

// fakeHostRoot is a node's / with the fake program (topology/nodestate's
// testdata) as iptables-save and nft, and a CNI configuration directory.
func fakeHostRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	prog := filepath.Join(t.TempDir(), "fakeprog")
	build := exec.Command("go", "build", "-o", prog, "../../topology/nodestate/testdata/fakeprog")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the fake program: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"usr/sbin/iptables-save":              bin,
		"usr/sbin/nft":                        bin,
		"fake-root":                           nil,
		"etc/cni/net.d/10-flannel.conflist":   []byte(`{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"}]}`),
		"etc/cni/net.d/calico-kubeconfig":     []byte("token: SECRET-TOKEN\n"),
		"etc/cni/net.d/multus.d/multus.kconf": []byte("token: SECRET-TOKEN\n"),
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestPrivilegedBundleRefusedSendsNothing: a --bundle that cannot be
// written is a one-line usage error found before anything is sent, even
// with a lab to trace across, and nothing is left behind.
func TestPrivilegedBundleRefusedSendsNothing(t *testing.T) {
	l := labtest.New(t)
	dir := t.TempDir()
	for _, bundle := range []string{dir, filepath.Join(dir, "missing", "b.tar.gz"), "/proc/version", "-"} {
		t.Run(bundle, func(t *testing.T) {
			before := echoRequestsSent(t, l.Nodes[0].Pod.NS)
			args := append([]string{"trace", "--count", "3", "--interval", "10ms", "--bundle", bundle}, l.TraceArgs()...)
			code, stdout, stderr := runCLI(t, args...)
			if code != cli.ExitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--bundle "+bundle) {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d and one line naming --bundle", code, stdout, stderr, cli.ExitUsage)
			}
			if after := echoRequestsSent(t, l.Nodes[0].Pod.NS); after != before {
				t.Errorf("%d echo requests were sent, want none", after-before)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind in %s: %v", dir, entries)
	}
}

// A TCP trace's bundle holds the conntrack entries of its SYNs: TCP to
// the target port, one per source port, and no ICMP.
func TestPrivilegedBundleTCPFlows(t *testing.T) {
	l := labtest.NewWith(t, lab.Config{Backends: true})
	addBundleRule(t, l)
	n1, n2 := l.Nodes[0], l.Nodes[1]
	_, files, top := traceBundle(t, "--netns", n1.Pod.NSPath, "--node-netns", n1.NSPath, "--to", n2.Pod.Addr.String(),
		"--proto", "tcp", "--port", strconv.Itoa(lab.BackendPort))
	var ct nodestate.Conntrack
	decode(t, files, top+"node/conntrack.json", &ct)
	if len(ct.Flows) == 0 {
		t.Fatalf("node/conntrack.json holds no flow, want the probes' TCP ones")
	}
	sports := map[uint16]bool{}
	for _, f := range ct.Flows {
		if f.Protocol != "tcp" || f.Original.DstPort != lab.BackendPort || f.Original.Src != n1.Pod.Addr.String() || f.Original.Dst != n2.Pod.Addr.String() {
			t.Errorf("node/conntrack.json: flow %+v, want TCP from %s to %s:%d", f, n1.Pod.Addr, n2.Pod.Addr, lab.BackendPort)
		}
		if sports[f.Original.SrcPort] {
			t.Errorf("node/conntrack.json: two flows from source port %d, want one each", f.Original.SrcPort)
		}
		sports[f.Original.SrcPort] = true
	}
	t.Logf("%d TCP flows", len(ct.Flows))
}
