package nodestate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rootDir returns the host root as Options gives it: "/" for "".
func rootDir(hostRoot string) string {
	if hostRoot == "" {
		return "/"
	}
	return filepath.Clean(hostRoot)
}

// maxLinks bounds the symbolic links inRoot follows, as the kernel's
// ELOOP limit does.
const maxLinks = 40

// errTooManyLinks ends a resolution that went round in circles.
var errTooManyLinks = errors.New("too many levels of symbolic links")

// inRoot returns p, a path on the node, as a path under root with every
// symbolic link on the way followed inside root, the last one too, as if
// root were /: on a Debian node /usr/sbin/iptables-save is a link to
// /etc/alternatives/iptables-save, which a plain join would follow into
// this machine's /etc. ".." never climbs above root. With root "/" it is
// p cleaned. A missing element is an error wrapping fs.ErrNotExist.
func inRoot(root, p string) (string, error) {
	p = filepath.Clean("/" + p)
	if root == "/" {
		return p, nil
	}
	todo := strings.Split(strings.TrimPrefix(p, "/"), "/")
	done := "/"
	for links := 0; len(todo) > 0; {
		elem := todo[0]
		todo = todo[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done) // never above root: Dir("/") is "/"
			continue
		}
		next := filepath.Join(done, elem)
		target, err := os.Readlink(filepath.Join(root, next))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", err
		case err != nil:
			done = next // not a link (EINVAL), or not readable: what comes next will say
			continue
		}
		if links++; links > maxLinks {
			return "", &fs.PathError{Op: "resolve", Path: filepath.Join(root, p), Err: errTooManyLinks}
		}
		if filepath.IsAbs(target) {
			done = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return filepath.Join(root, done), nil
}

// programDirs are where programs are looked for on the node, in order:
// the PATH the programs themselves are given.
var programDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// minimalPATH is the whole environment of a program run: PATH, and nothing
// of cnitrace's own environment.
var minimalPATH = "PATH=" + strings.Join(programDirs, ":")

// findProgram looks for the program name in dirs on the node under root.
// It returns its path as the node sees it (for exec after chroot) and
// true, or false when no directory holds an executable regular file of
// that name (links followed inside root).
func findProgram(root string, dirs []string, name string) (string, bool) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		real, err := inRoot(root, p)
		if err != nil {
			continue
		}
		fi, err := os.Stat(real)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
