package cri_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cnitrace/cnitrace/topology/cri"
)

// A node's runtime is found with FindEndpoint(ctx, hostRoot, override);
// here a fake runtime on a socket of its own stands in for it, holding
// two attempts of default/web-0 and a kube-system/coredns.
func ExampleClient_FindPod() {
	dir, err := os.MkdirTemp("", "cri-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "containerd.sock")
	stop, err := listen(sock, &fakeRuntime{sandboxes: []fakeSandbox{
		{sb: sandbox("3f2a9c", "default", "web-0", 0, 100, runtimeapi.PodSandboxState_SANDBOX_NOTREADY)},
		{sb: sandbox("8d41e7", "default", "web-0", 1, 200, runtimeapi.PodSandboxState_SANDBOX_READY), info: pidInfo(4242, "/var/run/netns/cni-5c0e")},
		{sb: sandbox("c0ffee", "kube-system", "coredns", 0, 50, runtimeapi.PodSandboxState_SANDBOX_READY), info: pidInfo(99, "/var/run/netns/cni-77aa")},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := cri.FindEndpoint(ctx, "/", "unix://"+sock) // "" instead of the override tries cri.Endpoints("/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	pod, err := c.FindPod(ctx, "/", "default", "web-0")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pod, "sandbox", pod.SandboxID, "attempt", pod.Attempt)
	fmt.Println("netns:", pod.NetNSPath, "(runtime's:", pod.RuntimeNetNSPath+")")

	_, err = c.FindPod(ctx, "/", "default", "coredns")
	var nf *cri.PodNotFoundError
	if errors.As(err, &nf) {
		fmt.Println("not found; closest:", nf.Closest)
	}
	// Output:
	// default/web-0 sandbox 8d41e7 attempt 1
	// netns: /proc/4242/ns/net (runtime's: /var/run/netns/cni-5c0e)
	// not found; closest: [kube-system/coredns]
}
