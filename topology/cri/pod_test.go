package cri_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cnitrace/cnitrace/topology/cri"
)

const (
	ready    = runtimeapi.PodSandboxState_SANDBOX_READY
	notReady = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
)

// fixture reads a verbose info document from testdata.
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFindPod(t *testing.T) {
	tests := []struct {
		name      string
		sandboxes []fakeSandbox
		want      cri.Pod // SandboxID, PID, NetNSPath, RuntimeNetNSPath, HostNetwork compared
	}{{
		name:      "found",
		sandboxes: []fakeSandbox{{sb: sandbox("aaa", "default", "web", 0, 100, ready), info: pidInfo(4242, "/run/netns/cni-1")}},
		want:      cri.Pod{SandboxID: "aaa", PID: 4242, NetNSPath: "/proc/4242/ns/net", RuntimeNetNSPath: "/run/netns/cni-1"},
	}, {
		name: "newest attempt wins over a later creation",
		sandboxes: []fakeSandbox{
			{sb: sandbox("old", "default", "web", 1, 300, ready), info: pidInfo(1, "/run/netns/old")},
			{sb: sandbox("new", "default", "web", 2, 200, ready), info: pidInfo(2, "/run/netns/new")},
		},
		want: cri.Pod{SandboxID: "new", PID: 2, NetNSPath: "/proc/2/ns/net", RuntimeNetNSPath: "/run/netns/new"},
	}, {
		name: "same attempt: the later creation wins",
		sandboxes: []fakeSandbox{
			{sb: sandbox("early", "default", "web", 1, 100, ready), info: pidInfo(1, "/run/netns/early")},
			{sb: sandbox("late", "default", "web", 1, 200, ready), info: pidInfo(2, "/run/netns/late")},
		},
		want: cri.Pod{SandboxID: "late", PID: 2, NetNSPath: "/proc/2/ns/net", RuntimeNetNSPath: "/run/netns/late"},
	}, {
		name: "the newest ready wins over a newer one not ready",
		sandboxes: []fakeSandbox{
			{sb: sandbox("stopped", "default", "web", 3, 300, notReady), info: pidInfo(3, "/run/netns/stopped")},
			{sb: sandbox("running", "default", "web", 2, 200, ready), info: pidInfo(2, "/run/netns/running")},
		},
		want: cri.Pod{SandboxID: "running", PID: 2, NetNSPath: "/proc/2/ns/net", RuntimeNetNSPath: "/run/netns/running"},
	}, {
		name: "another namespace's pod of the same name is not it",
		sandboxes: []fakeSandbox{
			{sb: sandbox("other", "prod", "web", 5, 500, ready), info: pidInfo(5, "/run/netns/other")},
			{sb: sandbox("mine", "default", "web", 0, 100, ready), info: pidInfo(1, "/run/netns/mine")},
		},
		want: cri.Pod{SandboxID: "mine", PID: 1, NetNSPath: "/proc/1/ns/net", RuntimeNetNSPath: "/run/netns/mine"},
	}, {
		name:      "a sandbox without the kubelet's labels is found by its metadata",
		sandboxes: []fakeSandbox{{sb: unlabelled("bare", "default", "web", 0, 100, ready), info: pidInfo(7, "/run/netns/bare")}},
		want:      cri.Pod{SandboxID: "bare", PID: 7, NetNSPath: "/proc/7/ns/net", RuntimeNetNSPath: "/run/netns/bare"},
	}, {
		name:      "containerd 1.6 verbose info (real)",
		sandboxes: []fakeSandbox{{sb: sandbox("ctrd", "default", "web", 0, 100, ready), info: fixture(t, "containerd-1.6.20-info.json")}},
		want: cri.Pod{SandboxID: "ctrd", PID: 23568, NetNSPath: "/proc/23568/ns/net",
			RuntimeNetNSPath: "/tmp/TestZZDump1405290692/001/state/io.containerd.grpc.v1.cri/netns/cni-40cf90f2-4d0d-2526-e198-f4e8a4ee06ca"},
	}, {
		name:      "CRI-O verbose info: a spec, no pid",
		sandboxes: []fakeSandbox{{sb: sandbox("crio", "default", "web", 0, 100, ready), info: fixture(t, "crio-info.json")}},
		want: cri.Pod{SandboxID: "crio", NetNSPath: "/var/run/netns/8a0f3d6e-4b1c-4e7a-9b2d-5c6e7f8a9b0c",
			RuntimeNetNSPath: "/var/run/netns/8a0f3d6e-4b1c-4e7a-9b2d-5c6e7f8a9b0c"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialFake(t, &fakeRuntime{sandboxes: tt.sandboxes})
			pod, err := c.FindPod(context.Background(), "/", "default", "web")
			if err != nil {
				t.Fatal(err)
			}
			checkPod(t, pod, tt.want)
		})
	}
}

func checkPod(t *testing.T, got *cri.Pod, want cri.Pod) {
	t.Helper()
	if got.Namespace != "default" || got.Name != "web" {
		t.Errorf("got pod %s, want default/web", got)
	}
	if got.UID != "uid-"+want.SandboxID {
		t.Errorf("got uid %q, want %q", got.UID, "uid-"+want.SandboxID)
	}
	g := cri.Pod{SandboxID: got.SandboxID, PID: got.PID, NetNSPath: got.NetNSPath, RuntimeNetNSPath: got.RuntimeNetNSPath, HostNetwork: got.HostNetwork}
	if g != want {
		t.Errorf("got  %+v\nwant %+v", g, want)
	}
}

// TestFindPodHostRoot reads the runtime's paths under a host root whose
// /var/run is a link to /run, as on most nodes.
func TestFindPodHostRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run", "netns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/run", filepath.Join(root, "var", "run")); err != nil {
		t.Fatal(err)
	}
	c := dialFake(t, &fakeRuntime{sandboxes: []fakeSandbox{{sb: sandbox("crio", "default", "web", 0, 1, ready), info: fixture(t, "crio-info.json")}}})
	pod, err := c.FindPod(context.Background(), root, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, "run", "netns", "8a0f3d6e-4b1c-4e7a-9b2d-5c6e7f8a9b0c")
	if pod.NetNSPath != want || pod.RuntimeNetNSPath != want {
		t.Errorf("got NetNSPath %s, RuntimeNetNSPath %s, want both %s", pod.NetNSPath, pod.RuntimeNetNSPath, want)
	}
}

func TestFindPodNotReady(t *testing.T) {
	c := dialFake(t, &fakeRuntime{sandboxes: []fakeSandbox{
		{sb: sandbox("a", "default", "web", 0, 1, notReady)},
		{sb: sandbox("b", "default", "web", 1, 2, notReady)},
	}})
	pod, err := c.FindPod(context.Background(), "/", "default", "web")
	if !errors.Is(err, cri.ErrPodNotReady) {
		t.Fatalf("got %v, %v; want an error wrapping ErrPodNotReady", pod, err)
	}
	if !strings.Contains(err.Error(), "b (attempt 1)") {
		t.Errorf("error %q does not name the newest sandbox, b (attempt 1)", err)
	}
}

func TestFindPodHostNetwork(t *testing.T) {
	for _, tt := range []struct {
		name, info, netns string
		pid               int
	}{
		{"containerd (real)", fixture(t, "containerd-1.6.20-hostnetwork-info.json"), "/proc/23615/ns/net", 23615},
		{"no pid, no netns", `{"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"}]}}}`, "/proc/1/ns/net", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialFake(t, &fakeRuntime{sandboxes: []fakeSandbox{{sb: sandbox("h", "default", "web", 0, 1, ready), info: tt.info, hostNetwork: true}}})
			pod, err := c.FindPod(context.Background(), "/", "default", "web")
			if !errors.Is(err, cri.ErrHostNetwork) {
				t.Fatalf("got error %v, want one wrapping ErrHostNetwork", err)
			}
			if pod == nil || !pod.HostNetwork || pod.NetNSPath != tt.netns || pod.PID != tt.pid || pod.RuntimeNetNSPath != "" {
				t.Errorf("got pod %+v, want HostNetwork, PID %d, NetNSPath %s, no RuntimeNetNSPath", pod, tt.pid, tt.netns)
			}
		})
	}
}

func TestFindPodNotFound(t *testing.T) {
	c := dialFake(t, &fakeRuntime{sandboxes: []fakeSandbox{
		{sb: sandbox("1", "default", "web-0", 0, 1, ready)},
		{sb: sandbox("2", "default", "web-1", 0, 1, ready)},
		{sb: sandbox("3", "default", "web-1", 1, 2, ready)}, // listed once
		{sb: sandbox("4", "kube-system", "web", 0, 1, ready)},
		{sb: sandbox("5", "default", "database", 0, 1, ready)},
		{sb: sandbox("6", "monitoring", "prometheus-node-exporter", 0, 1, ready)},
	}})
	_, err := c.FindPod(context.Background(), "/", "default", "web")
	var nf *cri.PodNotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, cri.ErrPodNotFound) {
		t.Fatalf("got %v, want a *PodNotFoundError", err)
	}
	want := []string{"kube-system/web", "default/web-0", "default/web-1"}
	if !slices.Equal(nf.Closest, want) {
		t.Errorf("got closest %q, want %q", nf.Closest, want)
	}
	if nf.Listed != 6 || nf.Namespace != "default" || nf.Name != "web" {
		t.Errorf("got %+v, want 6 listed, searched default/web", nf)
	}
	t.Log(err)
}

func TestFindPodRuntimeFails(t *testing.T) {
	c := dialFake(t, &fakeRuntime{listErr: status.Error(codes.Unavailable, "shutting down")})
	_, err := c.FindPod(context.Background(), "/", "default", "web")
	if err == nil || !strings.Contains(err.Error(), "list pod sandboxes") {
		t.Fatalf("got %v, want an error saying what was asked", err)
	}
	if st, ok := status.FromError(err); !ok || st.Code() != codes.Unavailable {
		t.Errorf("status.FromError(%v) = %v, %v; want Unavailable through the wrapping", err, st, ok)
	}
}

func TestFindPodBadInput(t *testing.T) {
	c := dialFake(t, &fakeRuntime{sandboxes: []fakeSandbox{{sb: sandbox("x", "default", "web", 0, 1, ready), info: `{"pid": "not a number"`}}})
	for _, tt := range []struct{ ns, name string }{{"", "web"}, {"default", ""}, {"default", "web"}} {
		if _, err := c.FindPod(context.Background(), "/", tt.ns, tt.name); err == nil {
			t.Errorf("FindPod(%q, %q): got no error", tt.ns, tt.name)
		}
	}
}
