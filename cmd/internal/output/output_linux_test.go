package output

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// setUmask sets the process's umask for the test and returns the restore.
func setUmask(t *testing.T, mask int) func() {
	t.Helper()
	old := syscall.Umask(mask)
	return func() { syscall.Umask(old) }
}

// TestNewFileUsesUmask: a new file is 0644 minus the umask, as a shell
// redirect makes it, with O_TMPFILE and without.
func TestNewFileUsesUmask(t *testing.T) {
	defer setUmask(t, 0o027)()
	for _, tmpfile := range tmpfiles() {
		t.Run(tmpfile.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.txt")
			f, err := open(path, nil, tmpfile.open)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(f, "new")
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			checkContent(t, path, "new")
			checkMode(t, path, 0o640)
		})
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (mknod, mount)")
	}
}

// mknod makes a device node in a fresh directory, so that no test ever
// risks the system's own /dev.
func mknod(t *testing.T, name string, mode uint32, major, minor uint32) string {
	t.Helper()
	requireRoot(t)
	path := filepath.Join(t.TempDir(), name)
	if err := unix.Mknod(path, mode|0o666, int(unix.Mkdev(major, minor))); err != nil {
		t.Skipf("skipping: mknod %s: %v", path, err)
	}
	return path
}

// checkStillDevice fails t unless path is still the character device rdev.
func checkStillDevice(t *testing.T, path string, rdev uint64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != rdev {
		t.Errorf("%s is no longer character device %d:%d (mode %o, rdev %d:%d)", path,
			unix.Major(rdev), unix.Minor(rdev), st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
}

// TestCharDevicesWrittenInPlace: /dev/null takes the output, /dev/full
// refuses it at the write (ENOSPC, which Commit returns), and both stay
// the devices they are, whether named directly or through a link.
func TestCharDevicesWrittenInPlace(t *testing.T) {
	null, full := unix.Mkdev(1, 3), unix.Mkdev(1, 7)
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		rdev    uint64
		wantErr error // from the write and Commit
	}{
		{"/dev/null", func(*testing.T) string { return "/dev/null" }, null, nil},
		{"/dev/full", func(*testing.T) string { return "/dev/full" }, full, unix.ENOSPC},
		{"a null device of our own", func(t *testing.T) string { return mknod(t, "null", unix.S_IFCHR, 1, 3) }, null, nil},
		{"a full device of our own", func(t *testing.T) string { return mknod(t, "full", unix.S_IFCHR, 1, 7) }, full, unix.ENOSPC},
		{"a link to a full device", func(t *testing.T) string {
			dev := mknod(t, "full", unix.S_IFCHR, 1, 7)
			link := filepath.Join(filepath.Dir(dev), "link")
			if err := os.Symlink(dev, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, full, unix.ENOSPC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			f, err := Open(path, nil)
			if err != nil {
				t.Fatalf("Open(%s): %v", path, err)
			}
			defer f.Abort()
			_, werr := fmt.Fprint(f, "report")
			cerr := f.Commit()
			if tc.wantErr == nil && (werr != nil || cerr != nil) || tc.wantErr != nil && !errors.Is(cerr, tc.wantErr) {
				t.Errorf("write: %v, Commit: %v; want %v from both", werr, cerr, tc.wantErr)
			}
			real, err := filepath.EvalSymlinks(path)
			if err != nil {
				t.Fatal(err)
			}
			checkStillDevice(t, real, tc.rdev)
			if fi, err := os.Lstat(path); real != path && (err != nil || fi.Mode()&fs.ModeSymlink == 0) {
				t.Errorf("%s is no longer a link", path)
			}
		})
	}
}

// TestFIFOWrittenInPlace: a FIFO with a reader is written in place and
// stays a FIFO; one without a reader is refused at Open instead of
// blocking the command.
func TestFIFOWrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fifo, nil); !errors.Is(err, ErrNoReader) {
		t.Errorf("Open(FIFO without a reader) = %v, want ErrNoReader", err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := Open(fifo, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "report")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	if n, err := r.Read(b); err != nil || string(b[:n]) != "report" {
		t.Errorf("reader got %q, %v; want the report", b[:n], err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("%s is no longer a FIFO", fifo)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"fifo"}) {
		t.Errorf("directory holds %v", got)
	}
}

// TestOwnDescriptor: a link naming one of our open files (/proc/self/fd/N,
// /dev/fd/N) writes to that file, through a duplicate of its descriptor.
func TestOwnDescriptor(t *testing.T) {
	for _, prefix := range []string{"/proc/self/fd/", "/dev/fd/", "/proc/thread-self/fd/", "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/"} {
		t.Run(prefix, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			path := prefix + strconv.Itoa(int(w.Fd()))
			f, err := Open(path, nil)
			if err != nil {
				t.Fatalf("Open(%s): %v", path, err)
			}
			if f.rep != nil {
				t.Errorf("Open(%s) would replace a file", path)
			}
			fmt.Fprint(f, "report")
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 16)
			if n, err := r.Read(b); err != nil || string(b[:n]) != "report" {
				t.Errorf("pipe got %q, %v", b[:n], err)
			}
		})
	}
	// A regular file of ours is written at its offset, as its descriptor
	// would write it: the descriptor is duplicated, not the file reopened.
	file, err := os.OpenFile(filepath.Join(t.TempDir(), "file"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	fmt.Fprint(file, "abcdef")
	if _, err := file.Seek(2, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	write(t, "/dev/fd/"+strconv.Itoa(int(file.Fd())), "report")
	checkContent(t, file.Name(), "abreport")

	ro, err := os.Open("/etc/hostname")
	if err != nil {
		t.Skip(err)
	}
	defer ro.Close()
	if _, err := Open("/proc/self/fd/"+strconv.Itoa(int(ro.Fd())), nil); !errors.Is(err, ErrNotWritable) {
		t.Errorf("Open(a descriptor open for reading only) = %v, want ErrNotWritable", err)
	}
}

// TestStdoutOfAChild: --out /dev/stdout in a process whose stdout is a
// pipe, or a file opened for appending (a shell's >>), writes there: to
// the pipe, and after what the file held.
func TestStdoutOfAChild(t *testing.T) {
	cmd := helper(t, "/dev/stdout", "commit")
	out, err := cmd.Output()
	if err != nil || string(out) != "report" {
		t.Errorf("child's stdout (a pipe) got %q, %v; want the report", out, err)
	}

	log := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(log, []byte("head\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd = helper(t, "/dev/stdout", "commit")
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v", err)
	}
	checkContent(t, log, "head\nreport")
}

// TestPseudoFilesystemsRefused: nothing is written into /proc (or any
// filesystem that cannot hold a new file), be it over an existing file or
// as a new one.
func TestPseudoFilesystemsRefused(t *testing.T) {
	for _, path := range []string{"/proc/version", "/proc/cnitrace-report"} {
		if f, err := Open(path, nil); !errors.Is(err, ErrNotWritable) {
			if err == nil {
				f.Abort()
			}
			t.Errorf("Open(%s) = %v, want ErrNotWritable", path, err)
		}
	}
}

// TestOtherTypesRefused: a block device or a socket is no place for a
// report, and a file that is a mount point cannot be replaced.
func TestOtherTypesRefused(t *testing.T) {
	// An unused major number: nothing could be written there even if Open
	// tried.
	block := mknod(t, "block", unix.S_IFBLK, 250, 250)
	sock := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, path := range []string{block, sock} {
		if _, err := Open(path, nil); !errors.Is(err, ErrNotFile) {
			t.Errorf("Open(%s) = %v, want ErrNotFile", path, err)
		}
	}

	dir := t.TempDir()
	over, under := filepath.Join(dir, "hosts"), filepath.Join(dir, "source")
	for _, p := range []string{over, under} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(under, over, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("skipping the mount point: bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(over, unix.MNT_DETACH) })
	if _, err := Open(over, nil); !errors.Is(err, ErrMountPoint) {
		t.Errorf("Open(a bind-mounted file) = %v, want ErrMountPoint", err)
	}
	checkContent(t, over, under)
}

// TestReadOnlyFilesystemRefused: on a read-only filesystem (a tmpfs the
// test mounts and remounts read-only, since root ignores permission
// bits), an existing file and a new one are both refused at Open.
func TestReadOnlyFilesystemRefused(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("skipping: mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	existing := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	for _, path := range []string{existing, filepath.Join(dir, "new.txt")} {
		if _, err := Open(path, nil); !errors.Is(err, ErrNotWritable) || !errors.Is(err, unix.EROFS) {
			t.Errorf("Open(%s) = %v, want ErrNotWritable with EROFS", path, err)
		}
	}
	checkContent(t, existing, "old")
}

// TestUnprivilegedRefusals runs Open as nobody (uid 65534): a file
// without its write bit, a directory it may not write, and another user's
// file in a sticky directory are refused at Open, where root would pass.
func TestUnprivilegedRefusals(t *testing.T) {
	requireRoot(t)
	base, err := os.MkdirTemp("", "output-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	mk := func(name string, mode fs.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	free, shut, sticky := mk("free", 0o777), mk("shut", 0o755), mk("sticky", 0o777|fs.ModeSticky)
	readOnly := filepath.Join(free, "ro.txt")
	others := filepath.Join(sticky, "root.txt")
	for _, p := range []string{readOnly, others} {
		if err := os.WriteFile(p, []byte("old"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(others, 0o666); err != nil {
		t.Fatal(err)
	}
	// The test binary's own directory is root's alone: nobody runs a copy.
	bin := filepath.Join(base, "output.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{readOnly, filepath.Join(shut, "new.txt"), others} {
		cmd := helper(t, path, "open")
		cmd.Path, cmd.Args[0], cmd.Stderr = bin, bin, nil
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child for %s: %v\n%s", path, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != "not writable" {
			t.Errorf("as nobody, Open(%s): %s; want not writable", path, got)
		}
	}
	if got := names(t, free); !slices.Equal(got, []string{"ro.txt"}) {
		t.Errorf("%s holds %v", free, got)
	}
}

// TestKilledLeavesNothing SIGKILLs a process in the middle of writing its
// output: no temporary file is left in the directory, and a file it was
// to replace keeps its old content.
func TestKilledLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.txt")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "new.txt"), existing} {
		cmd := helper(t, path, "hang")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "writing\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q, %v; want it writing", line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
	}
	if got := names(t, dir); !slices.Equal(got, []string{"existing.txt"}) {
		t.Errorf("after SIGKILL the directory holds %v, want only existing.txt", got)
	}
	checkContent(t, existing, "old")
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// helper returns the command that runs TestHelperProcess in a child,
// doing what with path.
func helper(t *testing.T, path, what string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "OUTPUT_HELPER_PATH="+path, "OUTPUT_HELPER_DO="+what)
	cmd.Stderr = io.Discard
	return cmd
}

// TestHelperProcess is the child of the tests above, not a test: it opens
// OUTPUT_HELPER_PATH and, by OUTPUT_HELPER_DO, writes "report" and
// commits (commit), says which reason refused it (open), or writes, says
// "writing" and waits to be killed (hang).
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("OUTPUT_HELPER_PATH")
	if path == "" {
		t.Skip("only a helper for other tests")
	}
	f, err := Open(path, os.Stdout)
	switch do := os.Getenv("OUTPUT_HELPER_DO"); {
	case do == "open" && errors.Is(err, ErrNotWritable):
		fmt.Println("not writable")
	case do == "open":
		fmt.Println("Open:", err)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case do == "commit":
		fmt.Fprint(f, "report")
		if err := f.Commit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case do == "hang":
		fmt.Fprint(f, strings.Repeat("partial report\n", 1000))
		fmt.Println("writing")
		time.Sleep(time.Minute)
	}
	os.Exit(0)
}
