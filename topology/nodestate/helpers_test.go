package nodestate

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var fakeProg struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the fake program built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if fakeProg.dir != "" {
		os.RemoveAll(fakeProg.dir)
	}
	os.Exit(code)
}

// buildFakeProg builds testdata/fakeprog once, static (it runs in fake
// host roots holding nothing else), and returns its path.
func buildFakeProg(t *testing.T) string {
	t.Helper()
	fakeProg.once.Do(func() {
		if fakeProg.dir, fakeProg.err = os.MkdirTemp("", "nodestate-fakeprog-"); fakeProg.err != nil {
			return
		}
		fakeProg.path = filepath.Join(fakeProg.dir, "fakeprog")
		cmd := exec.Command("go", "build", "-o", fakeProg.path, "./testdata/fakeprog")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fakeProg.err = &exec.Error{Name: "go build ./testdata/fakeprog: " + string(out), Err: err}
		}
	})
	if fakeProg.err != nil {
		t.Fatal(fakeProg.err)
	}
	return fakeProg.path
}

// install copies the fake program to root/dir/name, executable.
func install(t *testing.T, prog, root, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, dir, name), b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes data to root/name, creating its directories.
func writeFile(t *testing.T, root, name, data string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
