package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/report"
	"github.com/cnitrace/cnitrace/topology"
	"github.com/cnitrace/cnitrace/topology/cri"
)

// --pod: the pod is found through the node's container runtime (CRI,
// package topology/cri), which says where its network namespace is.
// docs/kubernetes.md tells how it runs from a kubectl debug node pod.

// defaultNamespace is the Kubernetes namespace of a --pod without one.
const defaultNamespace = "default"

// debugHostRoot is where a `kubectl debug node/...` pod has the node's /.
const debugHostRoot = "/host"

// podLookupTimeout bounds finding the runtime and the pod in it: every
// usual socket tried (cri.ProbeTimeout each), then two CRI calls.
const podLookupTimeout = 30 * time.Second

// podRef is a --pod value, [NAMESPACE/]NAME.
type podRef struct{ namespace, name string }

func (p podRef) String() string { return p.namespace + "/" + p.name }

// parsePodRef parses --pod: NAME, or NAMESPACE/NAME.
func parsePodRef(s string) (podRef, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		ns, name = defaultNamespace, s
	}
	if ns == "" || name == "" || strings.Contains(name, "/") || strings.ContainsAny(s, " \t\n") {
		return podRef{}, cli.Usagef("--pod %q: want NAME or NAMESPACE/NAME, such as default/web-0", s)
	}
	return podRef{ns, name}, nil
}

// validatePod checks --pod and the flags that only go with it.
func (c *traceConfig) validatePod() error {
	if c.pod == "" {
		switch {
		case c.runtimeEndpoint != "":
			return cli.Usagef("--runtime-endpoint %s: only --pod uses it (it says where to find the pod's runtime)", c.runtimeEndpoint)
		case c.hostRoot != "" && c.bundle == "":
			return cli.Usagef("--host-root %s: only --pod and --bundle use it (it says where the node's / is)", c.hostRoot)
		}
		return nil
	}
	ref, err := parsePodRef(c.pod)
	if err != nil {
		return err
	}
	c.podRef = ref
	if scheme, _, ok := strings.Cut(c.runtimeEndpoint, "://"); ok && scheme != "unix" {
		return cli.Usagef("--runtime-endpoint %s: only unix:// sockets are supported, such as unix:///run/containerd/containerd.sock", c.runtimeEndpoint)
	}
	return nil
}

// resolveHostRoot returns the directory the node's files are read under:
// --host-root, else /host when isHostRoot says it is the node's / (as in a
// kubectl debug node pod), else /. detected says it was /host found so.
func (c *traceConfig) resolveHostRoot() (root string, detected bool, err error) {
	if c.hostRoot != "" {
		if fi, err := os.Stat(c.hostRoot); err != nil || !fi.IsDir() {
			return "", false, cli.Usagef("--host-root %s: no such directory (name the directory where the node's / is mounted, /host in a kubectl debug node pod)", c.hostRoot)
		}
		return c.hostRoot, false, nil
	}
	if isHostRoot(debugHostRoot, "/") {
		return debugHostRoot, true, nil
	}
	return "/", false, nil
}

// isHostRoot reports whether dir holds another system's root, as /host in
// a kubectl debug node pod does: dir/proc/1 exists (the node's processes,
// its /proc mounted with it) and dir is not root itself. Both are needed:
// a /host that is only a directory, or a link to /, is no host root.
func isHostRoot(dir, root string) bool {
	if _, err := os.Stat(filepath.Join(dir, "proc", "1")); err != nil {
		return false
	}
	d, err := os.Stat(dir)
	if err != nil {
		return false
	}
	r, err := os.Stat(root)
	return err == nil && !os.SameFile(d, r)
}

// openPodNetNS finds --pod through the node's runtime and opens its
// network namespace. It keeps the pod in c.found, for the report.
func (c *traceConfig) openPodNetNS(ctx context.Context, stderr io.Writer) (*topology.NetNS, error) {
	root, detected, err := c.resolveHostRoot()
	if err != nil {
		return nil, err
	}
	if detected {
		fmt.Fprintf(stderr, "cnitrace: reading the node's files under %s: it holds the node's /proc, as in a kubectl debug node pod (--host-root overrides)\n", root)
	}
	pod, err := c.findPod(ctx, root, stderr)
	if err != nil {
		return nil, err
	}
	ns, err := pod.OpenNetNS()
	if err != nil {
		return nil, podNetNSError(c.podRef, root, err)
	}
	c.found = pod
	return ns, nil
}

// findPod connects to the runtime (--runtime-endpoint, or the first of
// the usual sockets under root that answers) and finds the pod in it.
func (c *traceConfig) findPod(ctx context.Context, root string, stderr io.Writer) (*cri.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, podLookupTimeout)
	defer cancel()
	client, err := cri.FindEndpoint(ctx, root, c.runtimeEndpoint)
	if err != nil {
		return nil, runtimeError(c.podRef, root, c.runtimeEndpoint, err)
	}
	defer client.Close()
	pod, err := client.FindPod(ctx, root, c.podRef.namespace, c.podRef.name)
	if err != nil && !errors.Is(err, cri.ErrHostNetwork) {
		return nil, podError(err)
	}
	fmt.Fprintf(stderr, "cnitrace: pod %s: sandbox %s via %s, netns %s\n", pod, shortSandboxID(pod.SandboxID), client, pod.NetNSPath)
	return pod, nil
}

// runtimeError maps FindEndpoint's error. No socket at any path tried is
// a usage error (exit 2) listing them and the flags that say where; a
// socket that is there but does not answer is a runtime failure (exit 1),
// its reason kept typed for hint.
func runtimeError(ref podRef, root, override string, err error) error {
	var nr *cri.NoRuntimeError
	switch {
	case !errors.As(err, &nr) && override != "":
		return cli.UsageError{Err: fmt.Errorf("--runtime-endpoint: %w", err)} // not an endpoint at all: nothing was dialled
	case nr == nil || !allMissing(nr):
		return fmt.Errorf("--pod %s: %w", ref, err)
	}
	if override != "" {
		return cli.Usagef("--runtime-endpoint %s: no socket there (check the path; without the flag cnitrace tries the usual sockets under the host root)", override)
	}
	paths := make([]string, len(nr.Tried))
	for i, t := range nr.Tried {
		paths[i] = strings.TrimPrefix(t.Endpoint, "unix://")
	}
	return cli.Usagef("--pod %s: no container runtime socket under %s: tried %s (give the runtime's socket with --runtime-endpoint unix:///PATH, or where the node's / is with --host-root DIR)",
		ref, root, strings.Join(paths, ", "))
}

// allMissing reports whether no endpoint tried had a socket file.
func allMissing(nr *cri.NoRuntimeError) bool {
	for _, t := range nr.Tried {
		if !errors.Is(t.Err, fs.ErrNotExist) {
			return false
		}
	}
	return len(nr.Tried) > 0
}

// podError maps FindPod's error: a pod the runtime does not have is a
// usage error (exit 2; the message names the namespace searched and the
// closest names); anything else, a sandbox not ready included, is a
// runtime failure (exit 1).
func podError(err error) error {
	if errors.Is(err, cri.ErrPodNotFound) {
		return cli.UsageError{Err: err}
	}
	return err
}

// podNetNSError maps a failure to open the pod's netns. A file that is not
// there means the node's /proc is not where cnitrace looked: a usage error
// saying where to find it. A missing capability stays itself, for hint.
func podNetNSError(ref podRef, root string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return cli.Usagef("--pod %s: open its netns: %v (the node's processes are not under %s: run cnitrace with hostPID, or give where the node's / is with --host-root DIR)",
			ref, err, filepath.Join(root, "proc"))
	}
	return fmt.Errorf("--pod %s: %w", ref, err)
}

// hostNetworkTrace checks a hostNetwork pod against the node netns: the
// pod has none of its own, so the trace is the node's own (a hostNetwork
// trace), and says so on stderr. A pod in another netns than the node
// cnitrace was told of is a usage error: it runs elsewhere.
func hostNetworkTrace(p *cri.Pod, pod, node *topology.NetNS, stderr io.Writer) error {
	if pod.ID() != node.ID() {
		return cli.Usagef("--pod %s: a hostNetwork pod, in the node netns %s (from %s), but the node netns here is %s: run cnitrace in the node's netns (kubectl debug node/...), or give --node-netns %s",
			p, pod.ID(), p.NetNSPath, node.ID(), p.NetNSPath)
	}
	fmt.Fprintf(stderr, "cnitrace: pod %s is a hostNetwork pod: it shares the node netns %s, so this is a hostNetwork trace, from the node netns\n", p, node.ID())
	return nil
}

// nameSource names the pod in the report's source, when --pod found one.
func (c *traceConfig) nameSource(s *report.Source) {
	if c.found == nil {
		return
	}
	s.Pod, s.SandboxID, s.HostNetwork = c.found.String(), c.found.SandboxID, c.found.HostNetwork
}

// shortSandboxID shortens a sandbox id as crictl prints it.
func shortSandboxID(id string) string { return id[:min(len(id), 13)] }

// runtimeHint says what to do about an error of --pod's lookup, by its
// type, or returns "".
func runtimeHint(err error) string {
	var nf *cri.PodNotFoundError
	switch {
	case errors.As(err, &nf):
		return fmt.Sprintf("the pod may run on another node: 'kubectl get pod -n %s %s -o wide' says which; run cnitrace there ('crictl pods' lists this node's)", nf.Namespace, nf.Name)
	case errors.Is(err, cri.ErrPodNotReady):
		return "the pod's sandbox is being created, or was stopped and not replaced yet: trace again once 'kubectl get pod' shows it Running"
	case !errors.Is(err, cri.ErrNoRuntime):
		return ""
	case errors.Is(err, os.ErrPermission):
		return "connecting to the runtime's socket needs write permission on it, which no capability gives: run cnitrace as the socket's owner (root) or in its group ('ls -l' the socket)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens on that socket: is the runtime running on the node? ('systemctl status containerd', or crio); --runtime-endpoint unix:///PATH names another"
	}
	return "check that the runtime runs and speaks CRI v1; --runtime-endpoint unix:///PATH names its socket (crictl's runtime-endpoint, in /etc/crictl.yaml)"
}
