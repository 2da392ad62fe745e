package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// goList runs go list with args in this package's directory and returns
// its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// TestProductImports holds the line docs/architecture.md draws: the binary
// an SRE copies onto a node carries no lab code, and neither it nor any
// package under it execs a process: the CRI client (topology/cri) talks
// to the runtime over its socket, never through crictl.
func TestProductImports(t *testing.T) {
	const module = "github.com/cnitrace/cnitrace/"
	deps := goList(t, "-deps", ".")
	if !slices.Contains(deps, module+"report") || !slices.Contains(deps, module+"topology") {
		t.Fatalf("go list -deps . does not list the product's packages: %v", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, module+"topology/lab") || strings.HasPrefix(d, module+"cmd/cnitrace-bench") {
			t.Errorf("the cnitrace binary depends on %s: lab and bench code belong in cnitrace-lab and cnitrace-bench", d)
		}
	}
	if !slices.Contains(deps, module+"topology/cri") {
		t.Errorf("go list -deps . does not list topology/cri, which --pod uses")
	}
	for _, pkg := range []string{".", "../internal/cli", "../../topology", "../../topology/cri", "../../capture", "../../probe", "../../report"} {
		if imports := goList(t, "-f", "{{join .Imports \" \"}}", pkg); slices.Contains(imports, "os/exec") {
			t.Errorf("%s imports os/exec: nothing in the product execs a process", pkg)
		}
	}
}
