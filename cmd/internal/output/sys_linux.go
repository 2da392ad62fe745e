package output

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysTmpfile opens an unnamed file in dir with O_TMPFILE: it has no name
// until linkTmpfile gives it one, so no exit of the process, SIGKILL
// included, can leave it behind. Filesystems without O_TMPFILE answer
// EOPNOTSUPP (kernels before 3.11, EISDIR): errNoTmpfile.
func sysTmpfile(dir string, mode uint32) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, mode)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) {
		return nil, fmt.Errorf("open %s: %w (%w)", dir, errNoTmpfile, err)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
}

// linkTmpfile gives the unnamed file f the name name, which must not
// exist (fs.ErrExist otherwise). linkat with AT_EMPTY_PATH needs
// CAP_DAC_READ_SEARCH on older kernels; /proc/self/fd/N with
// AT_SYMLINK_FOLLOW does the same without it.
func linkTmpfile(f *os.File, name string) error {
	fd := int(f.Fd())
	err := unix.Linkat(fd, "", unix.AT_FDCWD, name, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: name, Err: err}
	}
	return nil
}

// keepAttributes gives f the owner (when the process may set it) and the
// mode, setuid bits aside, of old, the file it replaces. The owner comes
// first: chown clears the setuid and setgid bits.
func keepAttributes(f *os.File, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return f.Chmod(old.Mode().Perm())
	}
	if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
		// Best effort: only root (CAP_CHOWN) may give a file away.
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	return unix.Fchmod(int(f.Fd()), st.Mode&0o7777)
}

// writable reports whether the process may write the file at path with
// its effective ids: a read-only filesystem, an immutable file, or (for
// a user without CAP_DAC_OVERRIDE) a file without the write bit fail.
// It asks faccessat instead of opening the file, which would wake up
// whoever watches it with inotify.
func writable(path string) error {
	if err := unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS); err != nil {
		return &os.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}

// stickyAllows reports whether the process may rename over t's file in its
// directory: in a sticky directory such as /tmp, only the owner of the
// file or of the directory, or root, may.
func stickyAllows(t target) error {
	dir := filepath.Dir(t.path)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	euid := uint32(os.Geteuid())
	dst, ok1 := di.Sys().(*syscall.Stat_t)
	fst, ok2 := t.info.Sys().(*syscall.Stat_t)
	if di.Mode()&fs.ModeSticky == 0 || !ok1 || !ok2 || euid == 0 || fst.Uid == euid || dst.Uid == euid {
		return nil
	}
	return fmt.Errorf("%s belongs to uid %d, and only its owner may replace it in the sticky directory %s", t.path, fst.Uid, dir)
}

// mountPoint reports whether the file at path is a mount point (a file
// bind-mounted over, as /etc/hosts in a container): rename cannot replace
// it. Kernels without statx's mount id (before 5.8) are not asked.
func mountPoint(path string) bool {
	var f, d unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &f) != nil ||
		unix.Statx(unix.AT_FDCWD, filepath.Dir(path), 0, unix.STATX_MNT_ID, &d) != nil ||
		f.Mask&d.Mask&unix.STATX_MNT_ID == 0 {
		return false
	}
	return f.Mnt_id != d.Mnt_id
}

// procLink reports whether p, a symbolic link, names an open file: it is
// a link in a procfs fd directory (/proc/PID/fd/N, which /dev/stdout and
// /dev/fd/N lead to). fd is the descriptor when the directory is this
// process's own (self, thread-self, its pid or one of its threads), else -1.
func procLink(p string) (fd int, ok bool) {
	dir := filepath.Dir(p)
	var st unix.Statfs_t
	if filepath.Base(dir) != "fd" || unix.Statfs(dir, &st) != nil || st.Type != unix.PROC_SUPER_MAGIC {
		return -1, false
	}
	n, err := strconv.Atoi(filepath.Base(p))
	if err != nil || n < 0 || !ownFDDir(dir) {
		return -1, true
	}
	return n, true
}

// ownFDDir reports whether dir, a procfs fd directory, lists this
// process's descriptors: /proc/PID/fd or /proc/PID/task/TID/fd with our
// pid, however it was reached (/proc/self, /dev/fd).
func ownFDDir(dir string) bool {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	owner := filepath.Dir(real) // /proc/PID or /proc/PID/task/TID
	if filepath.Base(filepath.Dir(owner)) == "task" {
		owner = filepath.Dir(filepath.Dir(owner))
	}
	return filepath.Base(owner) == strconv.Itoa(os.Getpid())
}

// openInPlace opens t, a FIFO, a character device or an open file, for
// writing without creating or truncating anything. A descriptor of our
// own is duplicated, so that the output goes where it goes, at its offset
// and with its flags (a shell's >> appends). A FIFO is opened without
// blocking to find out whether anyone reads it; the descriptor then
// blocks again, as a redirect's would. An open file of another process
// that is a regular file is appended to, never overwritten.
func openInPlace(path string, t target) (*os.File, error) {
	if t.kind == kindOpenFD && t.fd >= 0 {
		return dupFD(path, t.fd)
	}
	flags := unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	if t.info != nil && t.info.Mode().IsRegular() {
		flags |= unix.O_APPEND
	}
	fd, err := unix.Open(t.path, flags, 0)
	if err != nil {
		return nil, inPlaceError(path, t, err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// dupFD returns a new descriptor for our own open file fd, checking it is
// open for writing.
func dupFD(path string, fd int) (*os.File, error) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, refuse(path, ErrNotWritable, fmt.Errorf("descriptor %d: %w", fd, err))
	}
	if fl&unix.O_ACCMODE == unix.O_RDONLY {
		return nil, refuse(path, ErrNotWritable, fmt.Errorf("descriptor %d is open for reading only", fd))
	}
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate descriptor %d for %s: %w", fd, path, err)
	}
	return os.NewFile(uintptr(nfd), path), nil
}

// inPlaceError says why t could not be opened for writing in place.
func inPlaceError(path string, t target, err error) error {
	perr := &os.PathError{Op: "open", Path: t.path, Err: err}
	switch {
	case errors.Is(err, unix.ENXIO) && t.info != nil && t.info.Mode()&fs.ModeNamedPipe != 0:
		return refuse(path, ErrNoReader, nil)
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return refuse(path, ErrNotFile, perr)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, unix.EROFS), errors.Is(err, unix.ETXTBSY):
		return refuse(path, ErrNotWritable, perr)
	}
	return fmt.Errorf("open %s: %w", path, perr)
}

// resourceError reports whether err says the system is out of something
// (space, quota, descriptors, memory): a runtime failure, not a bad path.
func resourceError(err error) bool {
	for _, e := range []error{unix.ENOSPC, unix.EDQUOT, unix.EMFILE, unix.ENFILE, unix.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
