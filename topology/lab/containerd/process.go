package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrMissingTools is returned by Start when a program or plugin it needs is
// not installed; Missing names them.
var ErrMissingTools = errors.New("containerd, runc or the CNI plugins are not installed")

// tool is a program (looked up in PATH and the sbin directories) or file
// Start needs, and the Debian package that has it.
type tool struct{ name, pkg string }

// Tools are what a daemon needs: the programs, then the CNI plugins that
// the default network and containerd's loopback setup run.
var tools = []tool{
	{"nsenter", "util-linux"},
	{"unshare", "util-linux"},
	{"mount", "mount"},
	{"iptables", "iptables"}, // the bridge plugin's ipMasq runs it
	{"containerd", "containerd"},
	{"containerd-shim-runc-v2", "containerd"},
	{"ctr", "containerd"},
	{"runc", "runc"},
	{CNIBinDir + "/bridge", "containernetworking-plugins"},
	{CNIBinDir + "/host-local", "containernetworking-plugins"},
	{CNIBinDir + "/loopback", "containernetworking-plugins"},
}

// daemonPath is the PATH containerd, its shims and the CNI plugins run
// with: a test's PATH may lack the sbin directories (runc, iptables).
const daemonPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Missing returns what Start needs and does not find, each as "name
// (Debian package pkg)"; nil when everything is there.
func Missing() []string {
	var missing []string
	for _, t := range tools {
		if _, err := look(t.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", t.name, t.pkg))
		}
	}
	return missing
}

// look finds a program in daemonPath, or checks that an absolute path is
// an executable file.
func look(name string) (string, error) {
	if filepath.IsAbs(name) {
		return exec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(daemonPath) {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// startScript runs as `sh -c startScript sh DIR CONTAINERD` inside the node
// netns and a fresh private mount namespace. It gives containerd a sysfs of
// the node's netns (as `ip netns exec` does), with the cgroup hierarchies
// carried over, which a fresh sysfs hides and runc needs; a tmpfs on /run,
// where the shims' sockets and iptables' lock go whatever the config says;
// DIR/var-lib on /var/lib, for libcni's cache and host-local's leases.
const startScript = `set -eu
dir=$1
mount --rbind /sys/fs/cgroup "$dir/cgroup"
mount -t sysfs sysfs /sys
mount --move "$dir/cgroup" /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$dir/var-lib" /var/lib
exec "$2" --config "$dir/config.toml"
`

// run starts containerd. Its pid is the process started: nsenter,
// unshare and sh each exec the next.
func (d *Daemon) run() error {
	bins := map[string]string{}
	for _, name := range []string{"nsenter", "unshare", "containerd"} {
		p, err := look(name)
		if err != nil {
			return err
		}
		bins[name] = p
	}
	log, err := os.OpenFile(d.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(bins["nsenter"], "--net="+d.Node.NSPath, "--",
		bins["unshare"], "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", startScript, "sh", d.Dir, bins["containerd"])
	cmd.Env = []string{"PATH=" + daemonPath, "HOME=/root", "LANG=C"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a ^C to the test is not containerd's
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", bins["nsenter"], err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func() { d.waitErr = cmd.Wait(); close(d.exited) }()
	return nil
}

// waitReady dials the socket and waits until the CRI plugin reports
// RuntimeReady and NetworkReady (the CNI configuration is loaded), or
// containerd exits, or ctx ends.
func (d *Daemon) waitReady(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", d.Socket, err)
	}
	d.conn = conn
	d.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
	d.Images = runtimeapi.NewImageServiceClient(conn)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		last := d.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("containerd exited: %v", d.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("wait for the CRI plugin to be ready: %w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// ready asks the CRI plugin's Status once.
func (d *Daemon) ready(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := d.Runtime.Status(cctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return err
	}
	for _, c := range st.GetStatus().GetConditions() {
		if !c.GetStatus() {
			return fmt.Errorf("%s: %s %s", c.GetType(), c.GetReason(), c.GetMessage())
		}
	}
	return nil
}

// importImage imports the pause image with ctr into the CRI plugin's
// containerd namespace (k8s.io) and waits until the plugin knows it.
func (d *Daemon) importImage(ctx context.Context) error {
	ctr, err := look("ctr")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, ctr, "--address", d.Socket, "--namespace", "k8s.io", "images", "import", d.layout.image())
	cmd.Env = []string{"PATH=" + daemonPath}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("import %s: %w%s", PauseImage, err, lab.QuoteOutput(out))
	}
	for {
		st, err := d.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: PauseImage}})
		if err == nil && st.GetImage() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the CRI plugin to list %s: %w (last: %v)", PauseImage, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends containerd SIGTERM and waits StopTimeout for it to exit,
// then kills it.
func (d *Daemon) stop() error {
	if d.cmd == nil {
		return nil
	}
	select {
	case <-d.exited:
		return nil // exited by itself: the log says why
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop containerd (pid %d): %w", d.cmd.Process.Pid, err)
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(StopTimeout):
	}
	d.cmd.Process.Kill()
	<-d.exited
	return fmt.Errorf("containerd (pid %d) ignored SIGTERM for %v and was killed", d.cmd.Process.Pid, StopTimeout)
}

// logTail returns the end of containerd's log for an error message.
func (d *Daemon) logTail() string {
	b, err := os.ReadFile(d.Log)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return fmt.Sprintf(" (containerd log %s ends: %s)", d.Log, strings.Join(lines, " | "))
}
