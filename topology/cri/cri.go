// Package cri finds a Kubernetes pod's network namespace by asking the
// node's container runtime over the Container Runtime Interface (CRI v1,
// gRPC on a unix socket), as the kubelet does: containerd, CRI-O, k3s's
// containerd or cri-dockerd.
//
// It only reads: Version, ListPodSandbox and PodSandboxStatus (verbose).
// Every path the runtime reports (netns files, /proc/PID) is a path on the
// node, and is read under the host root the caller gives: "/" on the node
// itself, "/host" in a `kubectl debug node` pod. docs/cri.md tells the
// whole lookup.
package cri

import (
	"errors"
	"fmt"
	"strings"
)

// Pod is a pod sandbox the runtime runs, reduced to what locating its
// network namespace needs. It is plain data.
type Pod struct {
	Namespace string // Kubernetes namespace, "default"
	Name      string // Kubernetes pod name, "web-0"
	UID       string // the pod's metadata.uid, as the runtime has it
	SandboxID string // the runtime's sandbox id
	Attempt   uint32 // the sandbox's attempt: the kubelet's restart count of it
	// NetNSPath is the file to open for the pod's network namespace, on
	// this machine: HOSTROOT/proc/PID/ns/net when the runtime reports the
	// sandbox's pid (containerd does), else the runtime's netns file under
	// the host root (CRI-O reports only that). For a hostNetwork pod it
	// names the node's namespace.
	NetNSPath string
	// RuntimeNetNSPath is the network namespace file of the sandbox's
	// runtime spec, under the host root; empty when the spec names none
	// (a hostNetwork pod). It is a bind mount, which only mount namespaces
	// that share the runtime's see; the pid's link works from any.
	RuntimeNetNSPath string
	PID              int  // the sandbox's (pause) process on the host, 0 when not reported
	HostNetwork      bool // the pod shares the node's network namespace
}

// String returns the pod as namespace/name.
func (p *Pod) String() string { return p.Namespace + "/" + p.Name }

// ErrNoRuntime is what a *NoRuntimeError is (errors.Is): no CRI runtime
// answered on any endpoint tried.
var ErrNoRuntime = errors.New("no container runtime answers")

// ErrPodNotFound is what a *PodNotFoundError is (errors.Is).
var ErrPodNotFound = errors.New("pod not found")

// ErrPodNotReady is returned by FindPod when the pod has sandboxes but none
// is ready: it is being created, or stopped and not yet replaced.
var ErrPodNotReady = errors.New("pod sandbox not ready")

// ErrHostNetwork is returned by FindPod, with the Pod, when the pod uses
// the node's network namespace (hostNetwork: true): there is no pod
// namespace to enter, and probes from the pod are probes from the node.
var ErrHostNetwork = errors.New("pod uses the host network")

// EndpointError is why one endpoint did not answer.
type EndpointError struct {
	Endpoint string // unix:///run/containerd/containerd.sock
	Err      error
}

func (e EndpointError) Error() string { return e.Endpoint + ": " + e.Err.Error() }

// NoRuntimeError lists every endpoint tried and why each failed.
type NoRuntimeError struct {
	Tried []EndpointError
}

func (e *NoRuntimeError) Error() string {
	parts := make([]string, len(e.Tried))
	for i, t := range e.Tried {
		parts[i] = t.Error()
	}
	return fmt.Sprintf("%v (tried %s)", ErrNoRuntime, strings.Join(parts, "; "))
}

// Is reports whether target is ErrNoRuntime.
func (e *NoRuntimeError) Is(target error) bool { return target == ErrNoRuntime }

// Unwrap returns each endpoint's error, so errors.Is finds, say,
// os.ErrPermission on a socket the caller may not open.
func (e *NoRuntimeError) Unwrap() []error {
	errs := make([]error, len(e.Tried))
	for i, t := range e.Tried {
		errs[i] = t.Err
	}
	return errs
}

// PodNotFoundError says that no pod sandbox has the name asked for, and
// which ones come closest.
type PodNotFoundError struct {
	Namespace, Name string
	// Listed is how many sandboxes the runtime listed, in all namespaces.
	Listed int
	// Closest are the listed pods nearest to Namespace/Name by edit
	// distance, nearest first, as namespace/name; at most MaxClosest.
	Closest []string
}

// MaxClosest is the most names a PodNotFoundError suggests.
const MaxClosest = 3

func (e *PodNotFoundError) Error() string {
	s := fmt.Sprintf("no pod sandbox named %q in namespace %q (%d listed in all namespaces", e.Name, e.Namespace, e.Listed)
	if len(e.Closest) > 0 {
		s += "; closest: " + strings.Join(e.Closest, ", ")
	}
	return s + ")"
}

// Is reports whether target is ErrPodNotFound.
func (e *PodNotFoundError) Is(target error) bool { return target == ErrPodNotFound }
