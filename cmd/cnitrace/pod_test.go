package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cnitrace/cnitrace/cmd/internal/cli"
	"github.com/cnitrace/cnitrace/topology/cri"
)

// fakeRuntime answers the CRI calls --pod makes (Version, ListPodSandbox
// with the kubelet's label filter, PodSandboxStatus verbose) from a fixed
// list of sandboxes: enough to see how cnitrace maps what a runtime says.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	sandboxes []*runtimeapi.PodSandbox
	info      string // the verbose info document of every sandbox
}

func (f *fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "fake", RuntimeVersion: "1.0", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	var items []*runtimeapi.PodSandbox
next:
	for _, sb := range f.sandboxes {
		for k, v := range req.GetFilter().GetLabelSelector() {
			if sb.GetLabels()[k] != v {
				continue next
			}
		}
		items = append(items, sb)
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	for _, sb := range f.sandboxes {
		if sb.GetId() == req.GetPodSandboxId() {
			return &runtimeapi.PodSandboxStatusResponse{
				Status: &runtimeapi.PodSandboxStatus{Id: sb.GetId(), Metadata: sb.GetMetadata(), State: sb.GetState()},
				Info:   map[string]string{"info": f.info},
			}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "sandbox %q not found", req.GetPodSandboxId())
}

// serveFake runs rt on a unix socket at path until the test ends.
func serveFake(t *testing.T, path string, rt *fakeRuntime) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, rt)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
}

// fakeSandbox is a sandbox of namespace/name with the kubelet's labels.
func fakeSandbox(id, namespace, name string, state runtimeapi.PodSandboxState) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{
		Id:       id,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: "uid-" + id},
		State:    state,
		Labels:   map[string]string{cri.LabelPodName: name, cri.LabelPodNamespace: namespace},
	}
}

// TestPodErrors runs --pod's mistakes and failures through the whole
// command, against no runtime, a dead socket and a fake runtime: each is
// one error line saying what to do, with the exit code docs/cli.md gives
// (2: something named does not exist; 1: a runtime that does not answer,
// a pod not ready), and a hint line only where one is known.
func TestPodErrors(t *testing.T) {
	empty := t.TempDir() // a host root without any runtime's socket
	dead := t.TempDir()  // one whose containerd socket nobody listens on
	deadSock := filepath.Join(dead, "run", "containerd", "containerd.sock")
	if err := os.MkdirAll(filepath.Dir(deadSock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(deadSock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A fake runtime at the usual containerd path of a host root whose
	// proc holds none of the pids it reports.
	root := t.TempDir()
	sock := filepath.Join(root, "run", "containerd", "containerd.sock")
	serveFake(t, sock, &fakeRuntime{
		sandboxes: []*runtimeapi.PodSandbox{
			fakeSandbox("a1", "default", "web", runtimeapi.PodSandboxState_SANDBOX_READY),
			fakeSandbox("a2", "default", "web-1", runtimeapi.PodSandboxState_SANDBOX_READY),
			fakeSandbox("b1", "kube-system", "nosuch", runtimeapi.PodSandboxState_SANDBOX_READY),
			fakeSandbox("c1", "default", "down", runtimeapi.PodSandboxState_SANDBOX_NOTREADY),
		},
		info: `{"pid":4242,"runtimeSpec":{"linux":{"namespaces":[{"type":"network","path":"/var/run/netns/cni-1"}]}}}`,
	})
	to := []string{"--to", "10.244.2.2"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  []string // each must appear in the error line
		wantHint string   // "" means no hint line
	}{
		{"--pod and --netns", []string{"trace", "--pod", "web", "--netns", "/run/netns/x"}, cli.ExitUsage, []string{"--pod and --netns both given"}, ""},
		{"--pod and --pid", []string{"path", "--pod", "web", "--pid", "1"}, cli.ExitUsage, []string{"--pod and --pid both given"}, ""},
		{"all three", []string{"trace", "--pod", "web", "--netns", "/x", "--pid", "1"}, cli.ExitUsage, []string{"--pod, --netns and --pid all given"}, ""},
		{"a bad pod name", []string{"trace", "--pod", "a/b/c"}, cli.ExitUsage, []string{`--pod "a/b/c": want NAME or NAMESPACE/NAME`}, ""},
		{"an empty namespace", []string{"trace", "--pod", "/web"}, cli.ExitUsage, []string{`--pod "/web"`}, ""},
		{"--host-root without --pod", []string{"trace", "--netns", "/x", "--host-root", "/host"}, cli.ExitUsage, []string{"--host-root /host: only --pod and --bundle use it"}, ""},
		{"--runtime-endpoint without --pod", []string{"path", "--pid", "1", "--runtime-endpoint", "unix:///x"}, cli.ExitUsage, []string{"--runtime-endpoint unix:///x: only --pod uses it"}, ""},
		{"a tcp endpoint", []string{"trace", "--pod", "web", "--runtime-endpoint", "tcp://10.0.0.1:10010"}, cli.ExitUsage, []string{"only unix:// sockets"}, ""},
		{"a missing host root", []string{"trace", "--pod", "web", "--host-root", filepath.Join(empty, "nope")}, cli.ExitUsage, []string{"--host-root " + filepath.Join(empty, "nope") + ": no such directory"}, ""},
		{"no runtime socket", []string{"trace", "--pod", "web", "--host-root", empty}, cli.ExitUsage, append([]string{
			"--pod default/web: no container runtime socket under " + empty, "--runtime-endpoint unix:///PATH", "--host-root DIR"}, endpointPaths(empty)...), ""},
		{"an endpoint without a path", []string{"trace", "--pod", "web", "--runtime-endpoint", "unix://"}, cli.ExitUsage, []string{`--runtime-endpoint: use runtime endpoint "unix://": no socket path`}, ""},
		{"no socket at --runtime-endpoint", []string{"path", "--pod", "web", "--runtime-endpoint", "unix://" + filepath.Join(empty, "x.sock")}, cli.ExitUsage,
			[]string{"--runtime-endpoint unix://" + filepath.Join(empty, "x.sock") + ": no socket there"}, ""},
		{"a socket nobody listens on", []string{"trace", "--pod", "web", "--host-root", dead}, cli.ExitFailure,
			[]string{"--pod default/web: no container runtime answers", deadSock + ": connect: connection refused"}, "is the runtime running"},
		{"pod not found", []string{"trace", "--pod", "default/nosuch", "--host-root", root}, cli.ExitUsage,
			[]string{`no pod sandbox named "nosuch" in namespace "default"`, "closest: kube-system/nosuch", "via fake 1.0 at unix://" + sock}, "kubectl get pod -n default nosuch -o wide"},
		{"closest names in the namespace", []string{"path", "--pod", "we", "--runtime-endpoint", sock}, cli.ExitUsage,
			[]string{`no pod sandbox named "we" in namespace "default"`, "closest: default/web, default/web-1"}, "run cnitrace there"},
		{"pod not ready", []string{"trace", "--pod", "down", "--host-root", root}, cli.ExitFailure, []string{"find pod default/down", "SANDBOX_NOTREADY", "pod sandbox not ready"}, "Running"},
		{"the node's processes elsewhere", []string{"trace", "--pod", "web", "--host-root", root}, cli.ExitUsage,
			[]string{"--pod default/web: open its netns", filepath.Join(root, "proc", "4242", "ns", "net"), "not under " + filepath.Join(root, "proc"), "--host-root DIR"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(tc.args, to...)...)
			if code != tc.wantCode {
				t.Errorf("got exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing", stdout)
			}
			errLine, hintLine := lastErrorLines(stderr)
			for _, want := range tc.wantMsg {
				if !strings.Contains(errLine, want) {
					t.Errorf("error line %q does not say %q", errLine, want)
				}
			}
			if tc.wantHint == "" && hintLine != "" || !strings.Contains(hintLine, tc.wantHint) {
				t.Errorf("got hint %q, want one saying %q", hintLine, tc.wantHint)
			}
		})
	}
}

// lastErrorLines checks that stderr ends with exactly one error line and
// at most one hint line, and returns them. Progress lines may come first.
func lastErrorLines(stderr string) (errLine, hintLine string) {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if strings.HasPrefix(last, "hint: ") && len(lines) > 1 {
		hintLine, last = last, lines[len(lines)-2]
	}
	n := strings.Count(stderr, program+": error: ")
	if n != 1 || !strings.HasPrefix(last, program+": error: ") {
		return fmt.Sprintf("(want one error line, then at most a hint line: %q)", stderr), hintLine
	}
	return last, hintLine
}

// endpointPaths are the socket paths cnitrace tries under root.
func endpointPaths(root string) []string {
	var paths []string
	for _, ep := range cri.Endpoints(root) {
		paths = append(paths, strings.TrimPrefix(ep, "unix://"))
	}
	return paths
}

func TestParsePodRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want podRef
		ok   bool
	}{
		{"web-0", podRef{"default", "web-0"}, true},
		{"kube-system/coredns-5d78c9869d-x2x9k", podRef{"kube-system", "coredns-5d78c9869d-x2x9k"}, true},
		{"default/", podRef{}, false},
		{"/web", podRef{}, false},
		{"a/b/c", podRef{}, false},
		{"web 0", podRef{}, false},
	} {
		got, err := parsePodRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePodRef(%q) = %v, %v; want %v (ok: %v)", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !cli.IsUsage(err) {
			t.Errorf("parsePodRef(%q): %v is not a usage error", tc.in, err)
		}
	}
}

// TestIsHostRoot: /host is the node's / only when it holds the node's
// processes (proc/1) and is not / itself.
func TestIsHostRoot(t *testing.T) {
	host := t.TempDir()
	if isHostRoot(host, "/") {
		t.Errorf("%s without proc/1 taken for a host root", host)
	}
	if err := os.MkdirAll(filepath.Join(host, "proc", "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !isHostRoot(host, "/") {
		t.Errorf("%s with proc/1 not taken for a host root", host)
	}
	if isHostRoot(host, host) {
		t.Errorf("%s taken for a host root of itself", host)
	}
	if isHostRoot(filepath.Join(host, "missing"), "/") {
		t.Error("a missing directory taken for a host root")
	}
}

// TestRuntimeHints: hints follow the lookup error's type, never its text.
func TestRuntimeHints(t *testing.T) {
	noRuntime := func(err error) error {
		return fmt.Errorf("--pod default/web: %w", &cri.NoRuntimeError{Tried: []cri.EndpointError{{Endpoint: "unix:///run/containerd/containerd.sock", Err: err}}})
	}
	tests := []struct {
		name string
		err  error
		want string // "" means no hint
	}{
		{"socket permission", noRuntime(&net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}), "write permission on it, which no capability gives"},
		{"nobody listens", noRuntime(&net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), "is the runtime running"},
		{"not CRI v1", noRuntime(errors.New("ask CRI v1 version: unknown service")), "speaks CRI v1"},
		{"not found", cli.UsageError{Err: fmt.Errorf("find pod: %w", &cri.PodNotFoundError{Namespace: "prod", Name: "api"})}, "kubectl get pod -n prod api -o wide"},
		{"not ready", fmt.Errorf("find pod: %w", cri.ErrPodNotReady), "Running"},
		{"text alone", errors.New("no container runtime answers: permission denied"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hint(tc.err)
			if tc.want == "" && h != "" || !strings.Contains(h, tc.want) {
				t.Errorf("hint(%v) = %q, want one containing %q", tc.err, h, tc.want)
			}
		})
	}
}
