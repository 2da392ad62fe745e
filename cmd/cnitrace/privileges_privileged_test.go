//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// nobody is the unprivileged user the setcap copies run as.
const nobody = 65534

// privRunTimeout bounds one run of a command of the table.
const privRunTimeout = 30 * time.Second

// capNumbers maps the table's capabilities to their numbers.
var capNumbers = map[string]int{
	"CAP_NET_RAW":    unix.CAP_NET_RAW,
	"CAP_NET_ADMIN":  unix.CAP_NET_ADMIN,
	"CAP_SYS_ADMIN":  unix.CAP_SYS_ADMIN,
	"CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
}

// privFixture is what the rows of the table run against: a lab with a
// Service (kube-proxy's iptables mode, which translates TCP and UDP only),
// a root process in node 1's pod for --pid, and the two binaries as
// shipped.
type privFixture struct {
	lab  *lab.Lab
	pid  int
	bins map[string]string // command name -> built binary
	// mergeTrace and mergeListen are copies of testdata/merge's files
	// that nobody may read, for the merge row.
	mergeTrace, mergeListen string
}

func newPrivFixture(t *testing.T) *privFixture {
	t.Helper()
	l := labtest.NewWith(t, lab.Config{Service: true})
	ctx, cancel := context.WithCancel(context.Background())
	sleeper := l.Command(ctx, l.Nodes[0].Pod.NSPath, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		cancel()
		t.Fatalf("start a process in the pod for --pid: %v", err)
	}
	t.Cleanup(func() { cancel(); sleeper.Wait() })
	waitInNetNS(t, sleeper.Process.Pid, l.Nodes[0].Pod.NS.Inode())
	return &privFixture{lab: l, pid: sleeper.Process.Pid, bins: map[string]string{
		program:        buildBinary(t),
		"cnitrace-lab": buildLabBinary(t),
	}}
}

// waitInNetNS waits until nsenter has moved process pid into the netns
// with inode ino (it starts in ours).
func waitInNetNS(t *testing.T, pid int, ino uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st unix.Stat_t
		err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &st)
		if err == nil && st.Ino == ino {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is not in net:[%d] after 5 s (stat: %v)", pid, ino, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// buildLabBinary builds cnitrace-lab as shipped, as buildBinary builds
// cnitrace.
func buildLabBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cnitrace-lab")
	cmd := exec.Command("go", "build", "-o", bin, "../cnitrace-lab")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cnitrace-lab: %v\n%s", err, out)
	}
	return bin
}

// privTarget is what a cnitrace row of the table traces: its IP and the
// flags that go with it.
type privTarget struct {
	name  string
	ip    func(*lab.Lab) string
	flags []string
}

// privTargets are the targets every cnitrace row runs against: node 2's
// pod with ICMP, the row's command as written (discovery still reads
// conntrack, so CAP_NET_ADMIN stays needed), and the Service with TCP to
// its port 80, the one target whose path needs the DNAT found in conntrack
// (conntrack read and used: without it discovery follows the ClusterIP
// and fails), as kube-proxy's Service carries no ICMP.
var privTargets = []privTarget{
	{"icmp-pod", func(l *lab.Lab) string { return l.Nodes[1].Pod.Addr.String() }, nil},
	{"tcp-service", func(l *lab.Lab) string { return l.Service.String() }, []string{"--proto", "tcp", "--port", strconv.Itoa(int(lab.ServicePorts[0].Port))}},
}

// listenTargets are what a listen row runs against: node 1's pod
// listening for probes from node 2's pod (a source on another node; the
// path toward it is found as path finds it, conntrack read). listen takes
// no protocol: its filter passes every probe's.
var listenTargets = []privTarget{
	{"from-pod", func(l *lab.Lab) string { return l.Nodes[1].Pod.Addr.String() }, nil},
}

// rowTargets are the targets row runs against: privTargets for trace and
// path, listenTargets for listen, none for merge and the lab.
func rowTargets(row privilegeRow) []privTarget {
	fields := strings.Fields(row.command)
	switch {
	case fields[0] != program:
		return nil
	case fields[1] == "listen":
		return listenTargets
	case fields[1] == "merge":
		return nil
	}
	return privTargets
}

// argv turns a row's command line into the binary and the arguments to
// run it with against the lab: FILE, PID and IP become node 1's pod, the
// process in it and tg's IP, followed by tg's flags; cnitrace gets node 1
// as its node netns, trace a short run, cnitrace-lab up a fresh lab name,
// removed at cleanup.
func (f *privFixture) argv(t *testing.T, row privilegeRow, tg privTarget) (string, []string) {
	t.Helper()
	fields := strings.Fields(row.command)
	n1 := f.lab.Nodes[0]
	subst := map[string]string{"FILE": n1.Pod.NSPath, "PID": strconv.Itoa(f.pid), "TRACE.json": f.mergeTrace, "LISTEN.json": f.mergeListen}
	if tg.ip != nil {
		subst["IP"] = tg.ip(f.lab)
	}
	var args []string
	for _, a := range fields[1:] {
		if v, ok := subst[a]; ok {
			a = v
		}
		args = append(args, a)
	}
	switch {
	case fields[0] == program && args[0] == "merge": // files only: it reads them and nothing else
	case fields[0] == program:
		args = append(append(args, tg.flags...), "--node-netns", n1.NSPath)
		switch args[0] {
		case "trace":
			args = append(args, "--count", "3", "--interval", "10ms", "--timeout", "500ms")
		case "listen": // its report goes to stdout, which runPriv discards
			args = append(args, "--duration", "1s")
		}
	case args[0] == "up":
		name := freshLabName(t)
		args = append(args, "--name", name)
		t.Cleanup(func() {
			exec.Command(f.bins["cnitrace-lab"], "down", name).Run() // the run may have removed it already
			labtest.CheckGone(t, name)
		})
	}
	bin, ok := f.bins[fields[0]]
	if !ok {
		t.Fatalf("row %q: no binary %s", row.command, fields[0])
	}
	return bin, args
}

func freshLabName(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return lab.NamePrefix + "caps" + hex.EncodeToString(b)
}

// runPriv runs cmd and returns its exit code and stderr.
func runPriv(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatalf("run %s: %v", strings.Join(cmd.Args, " "), err)
	return 0, ""
}

// underCapsh returns a command that runs bin with args as root, with caps
// dropped from the bounding set first: root then has every capability but
// those.
func underCapsh(ctx context.Context, capsh string, drop []string, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, capsh, append([]string{"--drop=" + strings.Join(drop, ","), "--", "-c", `exec "$0" "$@"`, bin}, args...)...)
}

// TestPrivilegedCapabilityTable enforces privilegeTable (the table of
// docs/privileges.md) on the built binaries and a lab, row by row:
//
//   - every "yes": run as root under capsh with that capability dropped,
//     the command exits 1, and its last two lines on stderr are the error,
//     naming the capability, and the hint, naming it again with how to
//     grant it (the setcap line, --cap-add, kubectl debug);
//   - every "root": the lab, run as root without it, exits 1 with an
//     error (which names the capability only where the lab does);
//   - exactly the row's capabilities suffice: a cnitrace row runs from a
//     copy of the binary given them with setcap, as nobody; a lab row
//     runs as root with every other capability dropped.
//
// A cnitrace row runs once per privTargets: ICMP to a pod, TCP to the
// Service.
func TestPrivilegedCapabilityTable(t *testing.T) {
	capsh, setcap := libcapTool(t, "capsh"), libcapTool(t, "setcap")
	f := newPrivFixture(t)
	copies := setcapDir(t)
	f.mergeTrace, f.mergeListen = copyReadable(t, copies, mergeTrace), copyReadable(t, copies, mergeListen)
	for _, row := range privilegeTable {
		t.Run(row.command, func(t *testing.T) {
			targets := rowTargets(row)
			if len(targets) == 0 {
				checkRow(t, f, capsh, setcap, copies, row, privTarget{})
				return
			}
			for _, tg := range targets {
				t.Run(tg.name, func(t *testing.T) { checkRow(t, f, capsh, setcap, copies, row, tg) })
			}
		})
	}
}

// checkRow runs row against f (tg says what a cnitrace row traces), as
// TestPrivilegedCapabilityTable says.
func checkRow(t *testing.T, f *privFixture, capsh, setcap, copies string, row privilegeRow, tg privTarget) {
	t.Helper()
	for _, c := range row.capabilities(needed, needRoot) {
		bin, args := f.argv(t, row, tg)
		ctx, cancel := context.WithTimeout(context.Background(), privRunTimeout)
		code, stderr := runPriv(t, underCapsh(ctx, capsh, []string{strings.ToLower(c)}, bin, args...))
		cancel()
		t.Logf("without %s: exit %d: %s", c, code, lastLine(stderr))
		if slices.Contains(row.capabilities(needed), c) {
			checkNamed(t, c, code, stderr)
		} else {
			checkFailed(t, c, code, stderr)
		}
	}
	bin, args := f.argv(t, row, tg)
	ctx, cancel := context.WithTimeout(context.Background(), privRunTimeout)
	defer cancel()
	var cmd *exec.Cmd
	if filepath.Base(bin) == program {
		cmd = asNobodyWith(t, ctx, setcap, copies, bin, row.capabilities(needed), args...)
	} else {
		cmd = underCapsh(ctx, capsh, allCapsBut(t, row.capabilities(needRoot)), bin, args...)
	}
	code, stderr := runPriv(t, cmd)
	t.Logf("with exactly %v: exit %d: %s", row.capabilities(needed, needRoot), code, lastLine(stderr))
	if code != cli.ExitOK {
		t.Errorf("with exactly %v: exit %d, want %d; stderr:\n%s", row.capabilities(needed, needRoot), code, cli.ExitOK, stderr)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// checkNamed checks the run without capability c: exit 1, the error line
// naming c, then exactly one hint line saying how to grant it.
func checkNamed(t *testing.T, c string, code int, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	errLines := 0
	for _, l := range lines {
		if strings.HasPrefix(l, program+": error: ") {
			errLines++
		}
	}
	last := len(lines) - 1
	switch {
	case code != cli.ExitFailure:
		t.Errorf("without %s: exit %d, want %d; stderr:\n%s", c, code, cli.ExitFailure, stderr)
	case errLines != 1 || last < 1 || !strings.HasPrefix(lines[last-1], program+": error: ") || !strings.HasPrefix(lines[last], "hint: "):
		t.Errorf("without %s: want one error line, then one hint line, at the end of stderr:\n%s", c, stderr)
	case !strings.Contains(lines[last-1], "(needs "+c+")"):
		t.Errorf("without %s: the error does not name it:\n%s", c, lines[last-1])
	default:
		h := lines[last]
		for _, want := range []string{c, "--cap-add " + strings.TrimPrefix(c, "CAP_"), setcapAll, "kubectl debug node/<node> --profile=sysadmin"} {
			if !strings.Contains(h, want) {
				t.Errorf("without %s: the hint does not say %q:\n%s", c, want, h)
			}
		}
	}
}

// checkFailed checks that the lab, run without c, failed with an error.
func checkFailed(t *testing.T, c string, code int, stderr string) {
	t.Helper()
	if code != cli.ExitFailure || strings.Count(stderr, "cnitrace-lab: error: ") == 0 {
		t.Errorf("without %s: exit %d, want %d with an error line; stderr:\n%s", c, code, cli.ExitFailure, stderr)
	}
}

// libcapTool finds capsh or setcap (Debian: libcap2-bin, in /usr/sbin,
// which a user's PATH may lack). Without it the test skips, or fails with
// CI=true: make test installs it.
func libcapTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); unix.Access(p, unix.X_OK) == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s not found: apt-get install libcap2-bin (make deps does)", name)
	}
	t.Skipf("skipping: %s not found: apt-get install libcap2-bin", name)
	return ""
}

// setcapDir returns a directory nobody can reach, on a filesystem that
// honours file capabilities (not mounted nosuid), for the setcap copies.
func setcapDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cnitrace-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s is mounted nosuid: file capabilities do not apply there (set TMPDIR)", dir)
		}
		t.Skipf("skipping: %s is mounted nosuid: file capabilities do not apply there (set TMPDIR)", dir)
	}
	return dir
}

// asNobodyWith copies bin into dir, gives the copy exactly caps with
// setcap, and returns the command that runs it as nobody with args.
func asNobodyWith(t *testing.T, ctx context.Context, setcap, dir, bin string, caps []string, args ...string) *exec.Cmd {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, filepath.Base(bin)+"-"+strconv.Itoa(len(caps)))
	os.Remove(cp)
	if err := os.WriteFile(cp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if len(caps) > 0 { // none: a plain copy, as a user without any would run it
		set := strings.ToLower(strings.Join(caps, ",")) + "+ep"
		if out, err := exec.Command(setcap, set, cp).CombinedOutput(); err != nil {
			t.Fatalf("setcap %s %s: %v\n%s", set, cp, err, out)
		}
	}
	cmd := exec.CommandContext(ctx, cp, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	return cmd
}

// copyReadable copies file into dir, readable by everyone, and returns
// the copy's path.
func copyReadable(t *testing.T, dir, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, filepath.Base(file))
	if err := os.WriteFile(cp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return cp
}

// allCapsBut returns every capability the kernel knows but keep, by
// number, as capsh --drop takes them.
func allCapsBut(t *testing.T, keep []string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	kept := map[int]bool{}
	for _, c := range keep {
		kept[capNumbers[c]] = true
	}
	var drop []string
	for n := 0; n <= last; n++ {
		if !kept[n] {
			drop = append(drop, strconv.Itoa(n))
		}
	}
	return drop
}
