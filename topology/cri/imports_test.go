package cri_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoGRPCRuntime: the package, which every cnitrace command links,
// pulls in neither the gRPC and protobuf runtimes nor net/http: their
// package initialisation would cost every run, --pod or not (docs/cri.md).
// Its tests may use them.
func TestNoGRPCRuntime(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps . listed %d packages: %v", len(deps), deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "k8s.io/cri-api", "net/http"} {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("topology/cri depends on %s", d)
			}
		}
	}
}
