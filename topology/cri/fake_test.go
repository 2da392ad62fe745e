package cri_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cnitrace/cnitrace/topology/cri"
)

// fakeRuntime is a CRI v1 runtime that serves the calls the client makes
// from a fixed list of sandboxes, filtering as containerd does.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	sandboxes []fakeSandbox
	listErr   error // returned by ListPodSandbox when set

	mu    sync.Mutex
	calls []string // the methods called, in order
}

// fakeSandbox is a sandbox and what its verbose status says.
type fakeSandbox struct {
	sb          *runtimeapi.PodSandbox
	info        string // the verbose info document; "" leaves it out
	hostNetwork bool
}

func (f *fakeRuntime) called(m string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, m)
}

func (f *fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	f.called("Version")
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "fake", RuntimeVersion: "1.0", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.called("ListPodSandbox")
	if f.listErr != nil {
		return nil, f.listErr
	}
	var items []*runtimeapi.PodSandbox
	for _, s := range f.sandboxes {
		if matches(s.sb, req.GetFilter()) {
			items = append(items, s.sb)
		}
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

// matches applies a ListPodSandbox filter as the runtimes do.
func matches(sb *runtimeapi.PodSandbox, f *runtimeapi.PodSandboxFilter) bool {
	if f == nil {
		return true
	}
	if f.GetId() != "" && f.GetId() != sb.GetId() {
		return false
	}
	if f.GetState() != nil && f.GetState().GetState() != sb.GetState() {
		return false
	}
	for k, v := range f.GetLabelSelector() {
		if sb.GetLabels()[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.called("PodSandboxStatus")
	for _, s := range f.sandboxes {
		if s.sb.GetId() != req.GetPodSandboxId() {
			continue
		}
		opts := &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
		if s.hostNetwork {
			opts.Network = runtimeapi.NamespaceMode_NODE
		}
		resp := &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{
			Id:        s.sb.GetId(),
			Metadata:  s.sb.GetMetadata(),
			State:     s.sb.GetState(),
			CreatedAt: s.sb.GetCreatedAt(),
			Labels:    s.sb.GetLabels(),
			Linux:     &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: opts}},
		}}
		if req.GetVerbose() && s.info != "" {
			resp.Info = map[string]string{"info": s.info}
		}
		return resp, nil
	}
	return nil, status.Errorf(codes.NotFound, "an error occurred when try to find sandbox %q: not found", req.GetPodSandboxId())
}

// serve runs rt on a unix socket at path until the test ends.
func serve(tb testing.TB, path string, rt runtimeapi.RuntimeServiceServer) {
	tb.Helper()
	stop, err := listen(path, rt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
}

// listen runs rt on a unix socket at path until stop is called.
func listen(path string, rt runtimeapi.RuntimeServiceServer) (stop func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, rt)
	go srv.Serve(lis)
	return srv.Stop, nil
}

// dialFake serves rt in a fresh directory and returns a client of it.
func dialFake(t *testing.T, rt runtimeapi.RuntimeServiceServer) *cri.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	serve(t, sock, rt)
	c, err := cri.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sandbox returns a sandbox of namespace/name carrying the kubelet's
// labels, as the kubelet asks for.
func sandbox(id, namespace, name string, attempt uint32, created int64, state runtimeapi.PodSandboxState) *runtimeapi.PodSandbox {
	sb := unlabelled(id, namespace, name, attempt, created, state)
	sb.Labels = map[string]string{
		cri.LabelPodName:      name,
		cri.LabelPodNamespace: namespace,
		cri.LabelPodUID:       "uid-" + id,
	}
	return sb
}

// unlabelled returns a sandbox with metadata only, as `crictl runp` makes.
func unlabelled(id, namespace, name string, attempt uint32, created int64, state runtimeapi.PodSandboxState) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{
		Id:        id,
		Metadata:  &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: "uid-" + id, Attempt: attempt},
		State:     state,
		CreatedAt: created,
	}
}

// pidInfo is a containerd-shaped verbose info document with only a pid
// and a netns path.
func pidInfo(pid int, netns string) string {
	return `{"pid":` + strconv.Itoa(pid) + `,"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"` + netns + `"}]}}}`
}
