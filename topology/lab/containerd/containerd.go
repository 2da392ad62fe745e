// Package containerd runs Debian's containerd, with its built-in CRI
// plugin and the reference CNI plugins, inside a lab node's network
// namespace, so that tests can look at pod networks that software nobody
// on the team wrote has built, exactly as on a kubelet's node.
//
// Start runs one daemon per node with everything of its own: root,
// state, gRPC socket, CNI configuration, a private mount namespace with a
// tmpfs on /run and a directory of its own on /var/lib. RunPod creates a
// pod sandbox through the CRI; containerd makes its network namespace and
// the CNI plugins wire it into the node. Nothing appears in the namespaces
// the test runs in. Close removes it all.
//
// It needs root and the Debian packages containerd, runc and
// containernetworking-plugins (Require lists what is missing); no image is
// pulled: the sandbox image is built locally from testdata/pause.go. The
// containerdtest subpackage wraps it for tests.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cnitrace/cnitrace/topology/lab"
)

// maxSocketPath is the longest unix socket path the kernel takes
// (sun_path is 108 bytes with the terminating NUL).
const maxSocketPath = 107

// Config says how to run a daemon.
type Config struct {
	// Dir holds everything of the daemon's: root, state, socket, config,
	// logs. It must exist, be on a file system overlayfs can use as upper
	// layer (not overlayfs, not tmpfs in a user namespace), and be short
	// enough for DIR/containerd.sock.ttrpc to be a socket path (at most 107
	// bytes): t.TempDir() is.
	Dir string
	// ConfList is the CNI network configuration list the CRI plugin uses;
	// nil means BridgeConfList(NodeBridge(node)).
	ConfList []byte
}

// Daemon is a containerd running in a lab node. Its methods are safe for
// concurrent use.
type Daemon struct {
	Node    *lab.Node
	Dir     string
	Socket  string // the gRPC socket's path, in the caller's mount namespace too
	Log     string // containerd's stdout and stderr
	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient

	layout  layout
	conn    *grpc.ClientConn
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error         // cmd's exit, valid once exited is closed

	mu       sync.Mutex
	pods     []*Sandbox // created and not yet removed, in creation order
	closed   bool
	closeErr error
}

// Start runs containerd in node's network namespace, with its files in
// cfg.Dir, waits until its CRI plugin reports the runtime and the network
// ready, and imports the pause image. On any failure what was started is
// stopped again. The caller must Close the daemon.
func Start(ctx context.Context, node *lab.Node, cfg Config) (_ *Daemon, err error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("start containerd in %s: needs Linux network namespaces", node.Name)
	}
	l := layout{dir: cfg.Dir}
	if err := prepare(ctx, node, l, cfg); err != nil {
		return nil, fmt.Errorf("start containerd in %s: %w", node.Name, err)
	}
	d := &Daemon{Node: node, Dir: cfg.Dir, Socket: l.socket(), Log: l.log(), layout: l}
	if err := d.run(); err != nil {
		return nil, fmt.Errorf("start containerd in %s: %w", node.Name, err)
	}
	defer func() {
		if err != nil {
			if cerr := d.Close(); cerr != nil {
				err = fmt.Errorf("%w (and while stopping it: %v)", err, cerr)
			}
		}
	}()
	if err := d.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("start containerd in %s: %w%s", node.Name, err, d.logTail())
	}
	if err := d.importImage(ctx); err != nil {
		return nil, fmt.Errorf("start containerd in %s: %w%s", node.Name, err, d.logTail())
	}
	return d, nil
}

// prepare checks the tools, creates the daemon's directories and writes
// its configuration, CNI network and pause image.
func prepare(ctx context.Context, node *lab.Node, l layout, cfg Config) error {
	if ttrpc := l.socket() + ".ttrpc"; len(ttrpc) > maxSocketPath {
		return fmt.Errorf("socket path %s is longer than %d bytes: use a shorter Config.Dir", ttrpc, maxSocketPath)
	}
	if missing := Missing(); len(missing) > 0 {
		return fmt.Errorf("%w: %v", ErrMissingTools, missing)
	}
	for _, d := range l.dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	conflist := cfg.ConfList
	if conflist == nil {
		var err error
		if conflist, err = BridgeConfList(NodeBridge(node)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(l.confDir()+"/10-lab.conflist", conflist, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(l.config(), configTOML(l, PauseImage), 0o644); err != nil {
		return err
	}
	return buildImage(ctx, cfg.Dir, l.image())
}

// Close removes the daemon's pod sandboxes (StopPodSandbox: the CNI
// plugins take their network down; RemovePodSandbox), stops containerd
// (SIGTERM, then SIGKILL after StopTimeout), kills any shim of this
// daemon that outlived it with its children, and removes the cgroups its
// sandboxes had. It is safe to call more than once; later calls return
// the first's result. Files in Dir stay, for the caller to remove (or to
// read: Log).
func (d *Daemon) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return d.closeErr
	}
	d.closed = true
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	for i := len(d.pods) - 1; i >= 0; i-- {
		errs = append(errs, d.removePod(ctx, d.pods[i]))
	}
	cancel()
	d.pods = nil
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	errs = append(errs, d.stop(), killShims(d.Socket), removeCgroups(d.cgroupParent()))
	d.closeErr = errors.Join(errs...)
	if d.closeErr != nil {
		d.closeErr = fmt.Errorf("stop containerd in %s: %w", d.Node.Name, d.closeErr)
	}
	return d.closeErr
}

// StopTimeout bounds each stage of Close: removing the sandboxes, then
// waiting for containerd to exit after SIGTERM.
const StopTimeout = 15 * time.Second
