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
// an SRE copies onto a node carries no lab code, and no package of it
// execs a process (the CRI client, topology/cri, talks to the runtime over
// its socket, never through crictl) but one: topology/nodestate, which
// runs the host's iptables-save and nft for the --bundle, since nothing
// else prints the host's rulesets as the host's own tools do.
func TestProductImports(t *testing.T) {
	const module = "github.com/cnitrace/cnitrace/"
	const execer = module + "topology/nodestate" // the only one allowed os/exec
	deps := goList(t, "-deps", ".")
	if !slices.Contains(deps, module+"report") || !slices.Contains(deps, module+"topology") {
		t.Fatalf("go list -deps . does not list the product's packages: %v", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, module+"topology/lab") || strings.HasPrefix(d, module+"cmd/cnitrace-bench") {
			t.Errorf("the cnitrace binary depends on %s: lab and bench code belong in cnitrace-lab and cnitrace-bench", d)
		}
	}
	for _, want := range []string{module + "topology/cri", execer} {
		if !slices.Contains(deps, want) {
			t.Errorf("go list -deps . does not list %s, which --pod and --bundle use", want)
		}
	}
	// Every package of the module in the binary, this one included.
	for _, line := range goListLines(t, "-deps", "-f", "{{.ImportPath}}:{{range .Imports}} {{.}}{{end}}", ".") {
		pkg, imports, _ := strings.Cut(line, ":")
		if !strings.HasPrefix(pkg, module) {
			continue
		}
		execs := slices.Contains(strings.Fields(imports), "os/exec")
		switch {
		case execs && pkg != execer:
			t.Errorf("%s imports os/exec: only %s may exec a process (the host's rulesets for --bundle)", pkg, execer)
		case !execs && pkg == execer:
			t.Errorf("%s no longer imports os/exec: drop its exception here and in docs/architecture.md", pkg)
		}
	}
}

// goListLines is goList keeping whole lines.
func goListLines(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
