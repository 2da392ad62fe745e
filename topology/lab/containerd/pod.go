package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sandbox is a pod sandbox a Daemon created.
type Sandbox struct {
	ID        string
	Namespace string
	Name      string
	UID       string
}

// PodOptions vary the sandbox RunPodWith asks for.
type PodOptions struct {
	// Attempt is the sandbox's metadata.attempt: the kubelet counts up
	// when it replaces a pod's sandbox.
	Attempt uint32
	// HostNetwork asks for the node's network namespace, as a pod with
	// hostNetwork: true.
	HostNetwork bool
}

// RunPod creates and starts a pod sandbox for namespace/name as the
// kubelet asks for one: metadata with a fresh uid, the kubelet's pod
// labels, its own network namespace. containerd makes the namespace and
// calls the CNI plugins. Close removes the sandbox.
func (d *Daemon) RunPod(ctx context.Context, namespace, name string) (*Sandbox, error) {
	return d.RunPodWith(ctx, namespace, name, PodOptions{})
}

// RunPodWith is RunPod with opts.
func (d *Daemon) RunPodWith(ctx context.Context, namespace, name string, opts PodOptions) (*Sandbox, error) {
	uid, err := newUID()
	if err != nil {
		return nil, fmt.Errorf("run pod %s/%s in %s: %w", namespace, name, d.Node.Name, err)
	}
	network := runtimeapi.NamespaceMode_POD
	if opts.HostNetwork {
		network = runtimeapi.NamespaceMode_NODE
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid, Attempt: opts.Attempt},
		LogDirectory: filepath.Join(d.layout.logs(), namespace+"_"+name+"_"+uid),
		Labels: map[string]string{
			"io.kubernetes.pod.name":      name,
			"io.kubernetes.pod.namespace": namespace,
			"io.kubernetes.pod.uid":       uid,
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: d.cgroupParent(),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: network,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
	if !opts.HostNetwork {
		cfg.Hostname = name // as the kubelet: a hostNetwork pod has the node's UTS namespace, and runc refuses a hostname there
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("run pod %s/%s in %s: the daemon is closed", namespace, name, d.Node.Name)
	}
	resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("run pod %s/%s in %s: %w%s", namespace, name, d.Node.Name, err, d.logTail())
	}
	sb := &Sandbox{ID: resp.GetPodSandboxId(), Namespace: namespace, Name: name, UID: uid}
	d.pods = append(d.pods, sb)
	return sb, nil
}

// removePod stops and removes sb; a sandbox the runtime no longer has is
// not an error.
func (d *Daemon) removePod(ctx context.Context, sb *Sandbox) error {
	_, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.ID})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("stop pod %s/%s (%s): %w", sb.Namespace, sb.Name, sb.ID, err)
	}
	_, err = d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.ID})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("remove pod %s/%s (%s): %w", sb.Namespace, sb.Name, sb.ID, err)
	}
	return nil
}

// cgroupParent is the cgroup the daemon's sandboxes go under, one per
// node, so Close can find and remove what runc leaves.
func (d *Daemon) cgroupParent() string { return "/" + d.Node.Name }

// newUID returns a random version-4 UUID, as the API server gives pods.
func newUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("choose pod uid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
