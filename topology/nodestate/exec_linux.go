package nodestate

// This file is the one place in the product that execs a process
// (TestProductImports allows os/exec here and nowhere else): the rulesets
// a bundle needs are the host's own iptables-save and nft output, and
// nothing else prints them as the host's tools would.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// runner runs the node's programs: found under root, started on a thread
// inside a namespace (the child inherits the thread's namespaces), chrooted
// to root unless it is /, with an environment of PATH alone, bounded by a
// timeout, their output capped.
type runner struct {
	root    string        // the node's /, where programs are looked for and chrooted to
	dirs    []string      // where programs are looked for: programDirs
	timeout time.Duration // for each run
	limit   int           // MaxProgramOutput
	// start starts cmd in ns; nil ns (tests only) starts it in cnitrace's
	// own namespace, without entering any.
	start func(ns *topology.NetNS, cmd *exec.Cmd) error
}

func newRunner(root string, timeout time.Duration) *runner {
	if timeout <= 0 {
		timeout = DefaultProgramTimeout
	}
	return &runner{root: root, dirs: programDirs, timeout: timeout, limit: MaxProgramOutput, start: startIn}
}

// startIn starts cmd on a fresh locked thread inside ns, as NetNS.Do runs
// anything: the process is created inside and waited for outside. Start
// spawns no goroutine here, since stdout and stderr are *os.File and cmd
// has no context.
func startIn(ns *topology.NetNS, cmd *exec.Cmd) error {
	if ns == nil {
		return cmd.Start()
	}
	return ns.Do(cmd.Start)
}

// output is what one program run printed.
type output struct {
	stdout, stderr []byte
	truncated      bool // stdout passed the limit: the program was killed there
}

// errTimeout says a program was killed for running past its timeout.
var errTimeout = errors.New("killed after its timeout")

// run runs the program at prog (a path on the node, from findProgram)
// with args in ns. A non-zero exit status, a kill at the timeout or at
// ctx's end are errors, returned with what the program printed so far.
func (r *runner) run(ctx context.Context, ns *topology.NetNS, prog string, args ...string) (output, error) {
	var out output
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return out, err
	}
	defer stdoutR.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutW.Close()
		return out, err
	}
	defer stderrR.Close()
	cmd := r.command(prog, args, stdoutW, stderrW, ambient())
	err = r.start(ns, cmd)
	if err != nil && len(cmd.SysProcAttr.AmbientCaps) > 0 && errors.Is(err, os.ErrPermission) {
		// The system refuses ambient capabilities (SECBIT_NO_CAP_AMBIENT_RAISE):
		// run it with what it gets of itself, and let it say what it lacks.
		cmd = r.command(prog, args, stdoutW, stderrW, nil)
		err = r.start(ns, cmd)
	}
	stdoutW.Close() // the child holds its own copies
	stderrW.Close()
	if err != nil {
		return out, r.startError(prog, err)
	}
	var once sync.Once
	killed := func() { once.Do(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }) }
	stop := context.AfterFunc(ctx, killed) // its whole process group
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		out.stderr, _ = io.ReadAll(io.LimitReader(stderrR, maxProgramStderr))
		io.Copy(io.Discard, stderrR) // the rest, so that the program never blocks on it
	})
	out.stdout, _ = io.ReadAll(io.LimitReader(stdoutR, int64(r.limit)+1))
	if len(out.stdout) > r.limit {
		out.stdout, out.truncated = out.stdout[:r.limit], true
		killed() // it has more to say than we keep
	}
	wg.Wait()
	werr := cmd.Wait()
	switch {
	case out.truncated:
		return out, nil
	case parent.Err() != nil:
		return out, fmt.Errorf("run %s: %w", prog, parent.Err())
	case ctx.Err() != nil:
		return out, fmt.Errorf("run %s: %w (%s)", prog, errTimeout, r.timeout)
	case werr != nil:
		return out, fmt.Errorf("run %s: %w%s", prog, werr, lastLine(out.stderr))
	}
	return out, nil
}

// command builds the exec.Cmd of one run: no environment but PATH, in
// its own process group (so that the timeout kills what it forks too),
// chrooted to r.root unless that is /, its working directory the node's /,
// with the ambient capabilities caps.
func (r *runner) command(prog string, args []string, stdout, stderr *os.File, caps []uintptr) *exec.Cmd {
	attr := &syscall.SysProcAttr{Setpgid: true, AmbientCaps: caps}
	if r.root != "/" {
		attr.Chroot = r.root
	}
	return &exec.Cmd{
		Path:        prog,
		Args:        append([]string{prog}, args...),
		Env:         []string{minimalPATH},
		Dir:         "/",
		Stdin:       nil, // /dev/null
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: attr,
	}
}

// ambient returns the capabilities a program is given of cnitrace's own:
// CAP_NET_ADMIN, which reading the rules needs, when cnitrace has it. A
// child of root has it anyway; a copy of cnitrace given its capabilities
// with setcap and run as another user (docs/privileges.md) would run the
// programs with none.
func ambient() []uintptr {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil || data[0].Permitted&(1<<unix.CAP_NET_ADMIN) == 0 {
		return nil
	}
	return []uintptr{unix.CAP_NET_ADMIN}
}

// startError names what starting a program lacks: chroot needs
// CAP_SYS_CHROOT (entering the namespace, CAP_SYS_ADMIN, is named by Do).
func (r *runner) startError(prog string, err error) error {
	var capErr *topology.CapabilityError
	if r.root != "/" && !errors.As(err, &capErr) {
		err = topology.NeedsCapability(err, "CAP_SYS_CHROOT")
	}
	return fmt.Errorf("start %s: %w", prog, err)
}

// lastLine returns ": " and the last non-empty line of a program's stderr,
// or "" when it printed nothing.
func lastLine(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return ": " + l
	}
	return ""
}
