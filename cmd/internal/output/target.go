package output

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// kind is what a path names, as far as writing to it goes.
type kind int

const (
	kindNew     kind = iota // nothing yet: a new regular file
	kindRegular             // a regular file, replaced on Commit
	kindInPlace             // a FIFO or a character device, written in place
	kindOpenFD              // a link into /proc naming an open file
)

// target is a path resolved and classified by inspect.
type target struct {
	kind kind
	path string      // the file to replace or open: path with its final symbolic links followed
	info fs.FileInfo // nil for kindNew
	fd   int         // kindOpenFD: our own descriptor the link names, or -1
}

// maxLinks bounds the symbolic links inspect follows, as the kernel's
// MAXSYMLINKS does.
const maxLinks = 40

// inspect follows the symbolic links of path's last element (those of
// its directories do not matter: the file is replaced in the directory
// they lead to) and says what is at the end, or why it cannot be written.
func inspect(path string) (target, error) {
	p := path
	for range maxLinks {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return newTarget(path, p)
		case err != nil:
			return target{}, statError(path, err)
		case fi.Mode()&fs.ModeSymlink == 0:
			return existingTarget(path, p, fi)
		}
		if fd, ok := procLink(p); ok {
			return openFDTarget(path, p, fd)
		}
		dest, err := os.Readlink(p)
		if err != nil {
			return target{}, statError(path, err)
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(p), dest)
		}
		p = dest
	}
	return target{}, refuse(path, ErrNoDir, fmt.Errorf("more than %d symbolic links", maxLinks))
}

// statError says why path's file could not be looked at: a directory on
// the way is missing or a file, or cannot be searched.
func statError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return refuse(path, ErrNotWritable, err)
	}
	return refuse(path, ErrNoDir, err)
}

// newTarget is a file p (reached from path) that does not exist yet: its
// directory must.
func newTarget(path, p string) (target, error) {
	dir := filepath.Dir(p)
	fi, err := os.Stat(dir)
	if err != nil {
		return target{}, statError(path, err)
	}
	if !fi.IsDir() {
		return target{}, refuse(path, ErrNoDir, fmt.Errorf("%s is not a directory", dir))
	}
	return target{kind: kindNew, path: p, fd: -1}, nil
}

// existingTarget classifies the file at p (reached from path), which is
// not a symbolic link.
func existingTarget(path, p string, fi fs.FileInfo) (target, error) {
	t := target{path: p, info: fi, fd: -1}
	m := fi.Mode()
	switch {
	case m.IsDir():
		return target{}, refuse(path, ErrIsDir, nil)
	case m.IsRegular():
		t.kind = kindRegular
		return t, checkReplaceable(path, t)
	case m&fs.ModeNamedPipe != 0, m&fs.ModeCharDevice != 0:
		t.kind = kindInPlace
		return t, nil
	}
	return target{}, refuse(path, ErrNotFile, fmt.Errorf("a %s", typeName(m)))
}

// openFDTarget is a link p (reached from path) into /proc that names an
// open file: our own descriptor fd, or another process's (fd < 0).
func openFDTarget(path, p string, fd int) (target, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return target{}, refuse(path, ErrNotWritable, err)
	}
	if fi.IsDir() {
		return target{}, refuse(path, ErrIsDir, nil)
	}
	m := fi.Mode()
	blockDevice := m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
	othersSocket := m&fs.ModeSocket != 0 && fd < 0 // cannot be opened; our own can be duplicated
	if blockDevice || othersSocket {
		return target{}, refuse(path, ErrNotFile, fmt.Errorf("a %s", typeName(m)))
	}
	return target{kind: kindOpenFD, path: p, info: fi, fd: fd}, nil
}

// checkReplaceable checks up front what would make replacing t fail at
// Commit: a file the process may not write, a file it may not rename over
// in a sticky directory, a file that is a mount point.
func checkReplaceable(path string, t target) error {
	if err := writable(t.path); err != nil {
		return refuse(path, ErrNotWritable, err)
	}
	if err := stickyAllows(t); err != nil {
		return refuse(path, ErrNotWritable, err)
	}
	if mountPoint(t.path) {
		return refuse(path, ErrMountPoint, nil)
	}
	return nil
}

// typeName names the type of a file in messages.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeIrregular != 0:
		return "file of an unknown type"
	}
	return "file"
}
