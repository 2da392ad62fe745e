package cri_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cnitrace/cnitrace/topology/cri"
)

func TestEndpoints(t *testing.T) {
	want := []string{
		"unix:///host/run/containerd/containerd.sock",
		"unix:///host/run/crio/crio.sock",
		"unix:///host/var/run/crio/crio.sock", // /host does not exist here: joined as given
		"unix:///host/run/k3s/containerd/containerd.sock",
		"unix:///host/run/cri-dockerd.sock",
	}
	got := cri.Endpoints("/host")
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestFindEndpointNoRuntime lists every socket tried: missing ones and one
// nobody listens on.
func TestFindEndpointNoRuntime(t *testing.T) {
	root := t.TempDir()
	dead := filepath.Join(root, "run", "containerd", "containerd.sock")
	if err := os.MkdirAll(filepath.Dir(dead), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dead, nil, 0o600); err != nil { // a socket left by a runtime that died
		t.Fatal(err)
	}
	c, err := cri.FindEndpoint(context.Background(), root, "")
	var nr *cri.NoRuntimeError
	if !errors.As(err, &nr) || !errors.Is(err, cri.ErrNoRuntime) {
		t.Fatalf("got %v, %v; want a *NoRuntimeError", c, err)
	}
	eps := cri.Endpoints(root)
	if len(nr.Tried) != len(eps) {
		t.Fatalf("tried %d endpoints, want %d: %v", len(nr.Tried), len(eps), err)
	}
	for i, ep := range eps {
		if nr.Tried[i].Endpoint != ep || !strings.Contains(err.Error(), ep) {
			t.Errorf("endpoint %d: tried %s, want %s named in %q", i, nr.Tried[i].Endpoint, ep, err)
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not unwrap to the missing sockets' ErrNotExist", err)
	}
	if !errors.Is(nr.Tried[0].Err, syscall.ECONNREFUSED) {
		t.Errorf("the dead socket's error %v is not ECONNREFUSED: callers cannot tell why it failed", nr.Tried[0].Err)
	}
	t.Log(err)
}

// TestFindEndpointOrder finds k3s's socket after containerd's, missing,
// and CRI-O's, dead.
func TestFindEndpointOrder(t *testing.T) {
	root := t.TempDir()
	dead := filepath.Join(root, "run", "crio", "crio.sock")
	if err := os.MkdirAll(filepath.Dir(dead), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dead, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	k3s := filepath.Join(root, "run", "k3s", "containerd", "containerd.sock")
	serve(t, k3s, &fakeRuntime{})
	c, err := cri.FindEndpoint(context.Background(), root, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Endpoint() != "unix://"+k3s || c.Runtime() != "fake 1.0" {
		t.Errorf("got %s, want fake 1.0 at unix://%s", c, k3s)
	}
}

func TestFindEndpointOverride(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "my.sock")
	serve(t, sock, &fakeRuntime{})
	for _, ep := range []string{sock, "unix://" + sock} {
		c, err := cri.FindEndpoint(context.Background(), "/nonexistent", ep)
		if err != nil {
			t.Errorf("FindEndpoint(%q): %v", ep, err)
			continue
		}
		if c.Endpoint() != "unix://"+sock {
			t.Errorf("FindEndpoint(%q): got endpoint %s, want unix://%s", ep, c.Endpoint(), sock)
		}
		c.Close()
	}
}

func TestDialErrors(t *testing.T) {
	for _, tt := range []struct {
		endpoint  string
		noRuntime bool // the error is ErrNoRuntime, not a usage error
	}{
		{"tcp://127.0.0.1:1234", false},
		{"npipe:////./pipe/containerd-containerd", false},
		{"unix://", false},
		{filepath.Join(t.TempDir(), "missing.sock"), true},
	} {
		_, err := cri.Dial(context.Background(), tt.endpoint)
		if err == nil || errors.Is(err, cri.ErrNoRuntime) != tt.noRuntime {
			t.Errorf("Dial(%q): got %v, want an error (ErrNoRuntime: %v)", tt.endpoint, err, tt.noRuntime)
		}
	}
}
