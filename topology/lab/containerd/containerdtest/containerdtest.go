// Package containerdtest runs containerd in lab nodes for tests, as
// labtest builds labs: Start skips a test that cannot run it (not root, not
// Linux, containerd or the CNI plugins not installed) unless CI=true, where
// that is a failure (CI installs them), and registers the cleanup.
package containerdtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cnitrace/cnitrace/topology/lab"
	"github.com/cnitrace/cnitrace/topology/lab/containerd"
	"github.com/cnitrace/cnitrace/topology/lab/labtest"
)

// StartTimeout bounds starting one daemon: building the pause image,
// containerd's start, the image import. It takes 1-3 s here, more on a
// cold Go build cache.
const StartTimeout = 60 * time.Second

// Require skips t, or fails it when CI=true, unless a lab can be built and
// containerd, runc and the CNI plugins are installed.
func Require(t testing.TB) {
	t.Helper()
	labtest.Require(t)
	missing := containerd.Missing()
	if len(missing) == 0 {
		return
	}
	reason := "containerd harness needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", reason)
	}
	t.Skip("skipping: " + reason)
}

// Start runs containerd in node (a node of a lab from labtest) with its
// files in a fresh t.TempDir, and registers a cleanup that closes the
// daemon: the sandboxes RunPod made are removed, containerd stopped. Give
// cfg.Dir empty; cfg.ConfList as containerd.Config says. When the test
// failed, the cleanup logs the end of containerd's log.
func Start(t testing.TB, node *lab.Node, cfg containerd.Config) *containerd.Daemon {
	t.Helper()
	Require(t)
	cfg.Dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	d, err := containerd.Start(ctx, node, cfg)
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close containerd in %s: %v", node.Name, err)
		}
		if t.Failed() {
			logTail(t, d.Log)
		}
	})
	return d
}

// logTail logs the last lines of containerd's log.
func logTail(t testing.TB, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("read containerd log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	t.Logf("containerd log %s ends:\n%s", path, strings.Join(lines, "\n"))
}
