//go:build !linux

package output

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// sysTmpfile: there is no O_TMPFILE here; the named fallback is used.
func sysTmpfile(dir string, mode uint32) (*os.File, error) {
	return nil, fmt.Errorf("open %s: %w", dir, errNoTmpfile)
}

// linkTmpfile is never called: sysTmpfile opens no unnamed files here.
func linkTmpfile(f *os.File, name string) error {
	return fmt.Errorf("link %s: %w", name, errNoTmpfile)
}

// keepAttributes gives f the permission bits of old, the file it replaces.
func keepAttributes(f *os.File, old fs.FileInfo) error {
	return f.Chmod(old.Mode().Perm())
}

// writable reports whether the file at path can be opened for writing;
// opening it without O_TRUNC changes nothing.
func writable(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// stickyAllows is not checked here: a refusal shows at Commit.
func stickyAllows(t target) error { return nil }

// mountPoint is not checked here: a refusal shows at Commit.
func mountPoint(path string) bool { return false }

// procLink: there is no procfs here (/dev/fd/N are devices).
func procLink(p string) (fd int, ok bool) { return -1, false }

// openInPlace opens t, a FIFO or a character device, for writing without
// creating or truncating anything.
func openInPlace(path string, t target) (*os.File, error) {
	f, err := os.OpenFile(t.path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrPermission) {
		return nil, refuse(path, ErrNotWritable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// resourceError reports whether err says the system is out of something
// (space, quota, descriptors): a runtime failure, not a bad path.
func resourceError(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EMFILE, syscall.ENFILE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
