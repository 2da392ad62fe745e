package nodestate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// cniConfDir is where CNI plugins' configuration is on a node (libcni's
// and the runtimes' default).
const cniConfDir = "/etc/cni/net.d"

// cniExtensions are the files libcni loads from cniConfDir: the only ones
// copied. The kubeconfig files some plugins keep there (Calico's
// calico-kubeconfig, Multus's multus.d/) hold tokens and are never read.
var cniExtensions = []string{".conf", ".conflist", ".json"}

// takeCNI copies the CNI configuration files under root's /etc/cni/net.d
// into cni/net.d/: regular files with a CNI extension only, each at most
// MaxCNIFile, at most MaxCNIFiles and maxCNITotal bytes in all, in name
// order. Everything else in the directory is a gap naming it, never read.
func (s *Snapshot) takeCNI(root string) {
	const prefix = "cni/net.d/"
	dir, err := inRoot(root, cniConfDir)
	if err == nil {
		var fi fs.FileInfo
		if fi, err = os.Stat(dir); err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s: not a directory", dir)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		s.gap(prefix, fmt.Sprintf("%s does not exist under %s", cniConfDir, root), nil)
		return
	}
	if err != nil {
		s.gap(prefix, "", fmt.Errorf("read %s under %s: %w", cniConfDir, root, err))
		return
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		s.gap(prefix, "", fmt.Errorf("read %s under %s: %w", cniConfDir, root, err))
		return
	}
	copied, total := 0, 0
	for _, e := range entries {
		name := prefix + e.Name()
		switch {
		case !slices.Contains(cniExtensions, path.Ext(e.Name())):
			s.gap(name, "not a CNI configuration file (libcni reads only .conf, .conflist and .json): not read", nil)
			continue
		case e.Type()&fs.ModeSymlink != 0:
			s.gap(name, "a symbolic link: not followed (only regular files are copied)", nil)
			continue
		case !e.Type().IsRegular():
			s.gap(name, "not a regular file: not read", nil)
			continue
		case copied == MaxCNIFiles:
			s.gap(name, fmt.Sprintf("more than %d CNI configuration files: not copied", MaxCNIFiles), nil)
			continue
		}
		data, err := readRegular(filepath.Join(dir, e.Name()), MaxCNIFile)
		switch {
		case err != nil:
			s.gap(name, "", err)
		case total+len(data) > maxCNITotal:
			s.gap(name, fmt.Sprintf("the CNI configuration files together pass %d bytes: not copied", maxCNITotal), nil)
		default:
			s.add(name, fmt.Sprintf("CNI configuration file %s/%s, as it is on the node", cniConfDir, e.Name()), data)
			copied++
			total += len(data)
		}
	}
}

// errTooLarge says a file is larger than what is copied of it.
var errTooLarge = errors.New("larger than the limit")

// readRegular reads the regular file at p, at most limit bytes. It opens
// the file without following a link and without blocking (a FIFO swapped
// in under its name is refused, not waited on), and checks on the open
// file that it is regular.
func readRegular(p string, limit int64) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file", p)
	case fi.Size() > limit:
		return nil, fmt.Errorf("%s: %d bytes, %w of %d: not copied", p, fi.Size(), errTooLarge, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: grew past %d bytes while read, %w: not copied", p, limit, errTooLarge)
	}
	return data, nil
}
