package nodestate

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRunner runs the fake program as name from a directory of its own,
// without a chroot or a namespace switch (those need privileges: see
// exec_privileged_test.go), so that any user can run these tests.
func fakeRunner(t *testing.T, name string) (*runner, string) {
	t.Helper()
	dir := t.TempDir()
	install(t, buildFakeProg(t), dir, "bin", name)
	r := newRunner("/", time.Second)
	r.dirs = []string{filepath.Join(dir, "bin")}
	prog, ok := findProgram(r.root, r.dirs, name)
	if !ok {
		t.Fatalf("%s not found in %s", name, r.dirs)
	}
	return r, prog
}

// The program gets its arguments and an environment of PATH alone:
// nothing of ours, however it is named.
func TestRunEnvironment(t *testing.T) {
	const canary = "cnitrace-canary-7f3a9c"
	t.Setenv("CNITRACE_TEST_CANARY", canary)
	t.Setenv("KUBECONFIG", "/root/.kube/"+canary)
	r, prog := fakeRunner(t, "nft")
	out, err := r.run(context.Background(), nil, prog, "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	got := string(out.stdout)
	if !strings.Contains(got, "argv: "+prog+" list ruleset\n") {
		t.Errorf("the program did not get its arguments:\n%s", got)
	}
	var env []string
	for line := range strings.Lines(got) {
		if v, ok := strings.CutPrefix(line, "env: "); ok {
			env = append(env, strings.TrimSpace(v))
		}
	}
	if len(env) != 1 || env[0] != minimalPATH {
		t.Errorf("the program's environment is %q, want only %q", env, minimalPATH)
	}
	if strings.Contains(got, canary) {
		t.Errorf("our environment leaked into the program:\n%s", got)
	}
	if !strings.Contains(got, "cwd: /\n") {
		t.Errorf("the program did not start in /:\n%s", got)
	}
	if string(out.stderr) != "fakeprog: a warning on stderr\n" {
		t.Errorf("got stderr %q, want the warning alone", out.stderr)
	}
}

func TestRunTimeout(t *testing.T) {
	r, prog := fakeRunner(t, "iptables-save")
	r.timeout = 200 * time.Millisecond
	start := time.Now()
	out, err := r.run(context.Background(), nil, prog, "sleep")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("run took %s with a %s timeout", took, r.timeout)
	}
	if !errors.Is(err, errTimeout) {
		t.Errorf("got error %v, want %v", err, errTimeout)
	}
	if !strings.HasPrefix(string(out.stdout), "argv: ") {
		t.Errorf("what the program printed before it was killed is lost: %q", out.stdout)
	}
}

// Cancelling the context (Ctrl-C) kills the program too.
func TestRunCancel(t *testing.T) {
	r, prog := fakeRunner(t, "iptables-save")
	r.timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.run(ctx, nil, prog, "sleep")
	if took := time.Since(start); took > 5*time.Second || err == nil || errors.Is(err, errTimeout) {
		t.Errorf("run returned %v after %s, want the context's error within seconds", err, took)
	}
}

func TestRunLimit(t *testing.T) {
	r, prog := fakeRunner(t, "iptables-save")
	r.limit = 1000
	out, err := r.run(context.Background(), nil, prog, "spew", "1000000")
	if err != nil {
		t.Fatal(err)
	}
	if !out.truncated || len(out.stdout) != r.limit {
		t.Errorf("got %d bytes, truncated %v; want %d, true", len(out.stdout), out.truncated, r.limit)
	}
}

func TestRunFailure(t *testing.T) {
	r, prog := fakeRunner(t, "iptables-save")
	_, err := r.run(context.Background(), nil, prog, "fail")
	if err == nil || !strings.Contains(err.Error(), "exit status 3: fakeprog: asked to fail") {
		t.Errorf("got %v, want the exit status and the stderr line", err)
	}
}

// takeRulesets keeps what every program found printed, its stderr beside
// it, and says which were not found.
func TestTakeRulesets(t *testing.T) {
	r, _ := fakeRunner(t, "iptables-save")
	install(t, buildFakeProg(t), filepath.Dir(r.dirs[0]), "bin", "nft")
	s := &Snapshot{}
	s.takeRulesets(context.Background(), r, r.locate(), "node", nil)
	var names []string
	for _, f := range s.Files {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, " "), "node/iptables-save.txt node/iptables-save.txt.stderr.txt node/nft-ruleset.txt node/nft-ruleset.txt.stderr.txt"; got != want {
		t.Errorf("got files %s, want %s", got, want)
	}
	if !strings.Contains(string(s.Files[2].Data), " list ruleset\n") {
		t.Errorf("nft was not asked to list the ruleset: %q", s.Files[2].Data)
	}
	var gaps []string
	for _, g := range s.Gaps {
		gaps = append(gaps, g.String())
	}
	if len(gaps) != 3 || !strings.Contains(gaps[0], "node/ip6tables-save.txt: ip6tables-save not found under /") {
		t.Errorf("got gaps %q, want the three programs not found", gaps)
	}
}
