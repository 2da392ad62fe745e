package cri

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The labels the kubelet puts on every pod sandbox it asks a runtime for.
const (
	LabelPodName      = "io.kubernetes.pod.name"
	LabelPodNamespace = "io.kubernetes.pod.namespace"
	LabelPodUID       = "io.kubernetes.pod.uid"
)

// FindPod finds the ready sandbox of the pod namespace/name and where its
// network namespace is, reading paths under hostRoot (see HostPath).
//
// It lists the sandboxes carrying the kubelet's pod labels (or, for
// sandboxes made without them, whose metadata has the name), takes the
// newest ready one (highest attempt, then latest creation) and reads its
// verbose status: the pid and the runtime spec's network namespace path.
//
// Errors callers branch on: a *PodNotFoundError (errors.Is
// ErrPodNotFound) naming the closest pods listed; ErrPodNotReady when
// sandboxes exist but none is ready; ErrHostNetwork for a hostNetwork pod,
// the one error returned together with the Pod (its NetNSPath is the
// node's namespace). A runtime that fails a call gives that call's gRPC
// error, wrapped with what was asked of which runtime.
func (c *Client) FindPod(ctx context.Context, hostRoot, namespace, name string) (*Pod, error) {
	if namespace == "" || name == "" {
		return nil, fmt.Errorf("find pod %q/%q: namespace and name must not be empty", namespace, name)
	}
	sb, err := c.findSandbox(ctx, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("find pod %s/%s via %s: %w", namespace, name, c, err)
	}
	pod, err := c.sandboxPod(ctx, hostRoot, sb)
	if err != nil {
		return pod, fmt.Errorf("find pod %s/%s via %s: %w", namespace, name, c, err)
	}
	return pod, nil
}

// findSandbox returns the newest ready sandbox of namespace/name.
func (c *Client) findSandbox(ctx context.Context, namespace, name string) (*runtimeapi.PodSandbox, error) {
	sbs, err := c.listSandboxes(ctx, map[string]string{LabelPodNamespace: namespace, LabelPodName: name})
	if err != nil {
		return nil, err
	}
	if len(sbs) == 0 {
		all, err := c.listSandboxes(ctx, nil)
		if err != nil {
			return nil, err
		}
		for _, sb := range all {
			if md := sb.GetMetadata(); md.GetNamespace() == namespace && md.GetName() == name {
				sbs = append(sbs, sb)
			}
		}
		if len(sbs) == 0 {
			return nil, notFound(namespace, name, all)
		}
	}
	slices.SortFunc(sbs, newestFirst)
	for _, sb := range sbs {
		if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			return sb, nil
		}
	}
	return nil, fmt.Errorf("newest of %d sandboxes, %s (attempt %d), is %s: %w",
		len(sbs), shortID(sbs[0].GetId()), sbs[0].GetMetadata().GetAttempt(), sbs[0].GetState(), ErrPodNotReady)
}

// listSandboxes lists the sandboxes carrying labels (all with nil).
func (c *Client) listSandboxes(ctx context.Context, labels map[string]string) ([]*runtimeapi.PodSandbox, error) {
	req := &runtimeapi.ListPodSandboxRequest{}
	if labels != nil {
		req.Filter = &runtimeapi.PodSandboxFilter{LabelSelector: labels}
	}
	resp, err := c.rt.ListPodSandbox(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	return resp.GetItems(), nil
}

// newestFirst orders sandboxes by attempt, then creation time, newest
// first, then by id, so the order never depends on the runtime's.
func newestFirst(a, b *runtimeapi.PodSandbox) int {
	return cmp.Or(
		cmp.Compare(b.GetMetadata().GetAttempt(), a.GetMetadata().GetAttempt()),
		cmp.Compare(b.GetCreatedAt(), a.GetCreatedAt()),
		cmp.Compare(a.GetId(), b.GetId()))
}

// sandboxPod reads sb's verbose status and returns the pod it runs.
func (c *Client) sandboxPod(ctx context.Context, hostRoot string, sb *runtimeapi.PodSandbox) (*Pod, error) {
	resp, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.GetId(), Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("read status of sandbox %s: %w", shortID(sb.GetId()), err)
	}
	st := resp.GetStatus()
	if st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, fmt.Errorf("sandbox %s is %s: %w", shortID(sb.GetId()), st.GetState(), ErrPodNotReady)
	}
	info, err := parseInfo(resp.GetInfo())
	if err != nil {
		return nil, fmt.Errorf("read status of sandbox %s: %w", shortID(sb.GetId()), err)
	}
	md := sb.GetMetadata()
	pod := &Pod{
		Namespace:   md.GetNamespace(),
		Name:        md.GetName(),
		UID:         md.GetUid(),
		SandboxID:   sb.GetId(),
		Attempt:     md.GetAttempt(),
		PID:         info.pid,
		HostNetwork: st.GetLinux().GetNamespaces().GetOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE,
	}
	if info.netnsPath != "" {
		pod.RuntimeNetNSPath = HostPath(hostRoot, info.netnsPath)
	}
	if pod.NetNSPath = netnsPath(hostRoot, pod); pod.NetNSPath == "" {
		return nil, fmt.Errorf("sandbox %s: the runtime reports neither its pid nor its network namespace", shortID(sb.GetId()))
	}
	if pod.HostNetwork {
		return pod, fmt.Errorf("sandbox %s: %w", shortID(sb.GetId()), ErrHostNetwork)
	}
	return pod, nil
}

// netnsPath chooses the file to open for pod's network namespace: the
// pid's link, which works from any mount namespace, else the runtime's
// netns file; for a hostNetwork pod without either, the node's own (that
// of the host's pid 1). It returns "" when there is none.
func netnsPath(hostRoot string, pod *Pod) string {
	switch {
	case pod.PID > 0:
		return HostPath(hostRoot, filepath.Join("/proc", strconv.Itoa(pod.PID), "ns", "net"))
	case pod.RuntimeNetNSPath != "":
		return pod.RuntimeNetNSPath
	case pod.HostNetwork:
		return HostPath(hostRoot, "/proc/1/ns/net")
	}
	return ""
}

// shortID shortens a sandbox id as crictl prints it: 13 characters.
func shortID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
