package containerd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// killShims kills, with their children, the containerd-shim-runc-v2
// processes serving the daemon at socket that are still running. A shim
// outlives containerd by design (a restarted containerd finds its
// containers again); Close removed the sandboxes first, so normally none
// is left, and one that is belongs to a sandbox that could not be removed.
func killShims(socket string) error {
	shims, err := shimsOf(socket)
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range shims {
		for _, child := range childrenOf(pid) {
			syscall.Kill(child, syscall.SIGKILL)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill shim %d: %w", pid, err))
		}
	}
	if len(shims) > 0 {
		errs = append(errs, fmt.Errorf("shims %v of %s outlived containerd and were killed", shims, socket))
	}
	return errors.Join(errs...)
}

// shimsOf returns the pids of the shims whose command line has -address
// socket.
func shimsOf(socket string) ([]int, error) {
	var pids []int
	err := eachProcess(func(pid int) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			return
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			return
		}
		for i := 1; i < len(args); i++ {
			if args[i-1] == "-address" && args[i] == socket {
				pids = append(pids, pid)
			}
		}
	})
	return pids, err
}

// childrenOf returns the pids whose parent is pid.
func childrenOf(pid int) []int {
	var kids []int
	eachProcess(func(p int) {
		if ppid(p) == pid {
			kids = append(kids, p)
		}
	})
	return kids
}

// ppid reads the parent pid of pid from /proc/PID/stat; -1 when gone.
func ppid(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return -1
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return n
}

// eachProcess calls fn with every pid in /proc.
func eachProcess(fn func(pid int)) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			fn(pid)
		}
	}
	return nil
}

// removeCgroups removes the cgroup parent (a path like /NODE) from every
// hierarchy under cgroupRoot, cgroup v1 controllers and v2 alike, the
// sandboxes' cgroups under it first. runc removes a sandbox's own
// cgroups; the parent is the daemon's. A cgroup that still has processes
// cannot be removed: it is retried for a second, then reported.
func removeCgroups(parent string) error {
	var dirs []string
	for _, pattern := range []string{cgroupRoot + parent, cgroupRoot + "/*" + parent} {
		m, _ := filepath.Glob(pattern) // the patterns are well-formed
		dirs = append(dirs, m...)
	}
	var errs []error
	for _, dir := range dirs {
		errs = append(errs, removeCgroup(dir))
	}
	return errors.Join(errs...)
}

// removeCgroup removes the cgroup dir and those below it, deepest first.
func removeCgroup(dir string) error {
	var tree []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			tree = append(tree, p)
		}
		return nil
	})
	var err error
	for i := len(tree) - 1; i >= 0; i-- {
		for try := 0; try < 20; try++ {
			if err = syscall.Rmdir(tree[i]); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("remove cgroup %s: %w", tree[i], err)
		}
	}
	return nil
}
