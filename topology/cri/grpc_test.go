package cri_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cnitrace/cnitrace/topology/cri"
)

// TestFindPodLargeList: a ListPodSandbox answer of several hundred
// kilobytes, far past HTTP/2's default windows (64 KiB) and frame size
// (16 KiB), arrives whole: every sandbox is counted.
func TestFindPodLargeList(t *testing.T) {
	const n = 3000
	rt := &fakeRuntime{}
	for i := range n {
		sb := sandbox(strings.Repeat("f", 56)+string(rune('a'+i%26)), "ns-"+strings.Repeat("x", i%50), "pod-"+strings.Repeat("y", i%40), 0, int64(i), ready)
		sb.Annotations = map[string]string{"note": strings.Repeat("z", 100)}
		rt.sandboxes = append(rt.sandboxes, fakeSandbox{sb: sb})
	}
	c := dialFake(t, rt)
	_, err := c.FindPod(context.Background(), "/", "default", "absent")
	var nf *cri.PodNotFoundError
	if !errors.As(err, &nf) || nf.Listed != n {
		t.Fatalf("got %v, want a *PodNotFoundError with %d listed", err, n)
	}
}

// TestFindPodHostNetworkMode: the network namespace mode is read from
// deep in the status (linux.namespaces.options.network): NODE is a
// hostNetwork pod, POD is not.
func TestFindPodHostNetworkMode(t *testing.T) {
	for _, tt := range []struct {
		mode runtimeapi.NamespaceMode
		want bool
	}{{runtimeapi.NamespaceMode_NODE, true}, {runtimeapi.NamespaceMode_POD, false}} {
		c := dialFake(t, &fakeRuntime{sandboxes: []fakeSandbox{{sb: sandbox("8d41e7", "default", "web", 0, 1, ready), info: pidInfo(4242, "/var/run/netns/x"), hostNetwork: tt.mode == runtimeapi.NamespaceMode_NODE}}})
		pod, err := c.FindPod(context.Background(), "/", "default", "web")
		if pod == nil || pod.HostNetwork != tt.want || (tt.want != errors.Is(err, cri.ErrHostNetwork)) {
			t.Errorf("mode %s: got %+v, %v; want HostNetwork %v", tt.mode, pod, err, tt.want)
		}
	}
}

// TestDialSilentRuntime: a socket that accepts and never answers is given
// up on when ctx ends, as grpc-go did: DeadlineExceeded, and the endpoint
// counts as no runtime.
func TestDialSilentRuntime(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = cri.Dial(ctx, sock)
	var st *cri.StatusError
	if !errors.Is(err, cri.ErrNoRuntime) || !errors.As(err, &st) || st.Code != cri.DeadlineExceeded {
		t.Errorf("got %v, want ErrNoRuntime and a DeadlineExceeded *StatusError", err)
	}
}

// TestDialNotGRPC: a socket that answers something else than HTTP/2 is
// no runtime, Unavailable, and the call does not wait for ctx to end.
func TestDialNotGRPC(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "http1.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			c.Close()
		}
	}()
	_, err = cri.Dial(context.Background(), sock) // no deadline: it must not hang
	var st *cri.StatusError
	if !errors.Is(err, cri.ErrNoRuntime) || !errors.As(err, &st) || st.Code != cri.Unavailable {
		t.Errorf("got %v, want ErrNoRuntime and an Unavailable *StatusError", err)
	}
}
