package nodestate

import "golang.org/x/sys/unix"

// Kernel returns the node's kernel as uname -srvm prints it: its name,
// release, build version and machine. The host name is left out: the
// report names the node.
func Kernel() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " +
		unix.ByteSliceToString(u.Version[:]) + " " + unix.ByteSliceToString(u.Machine[:]), nil
}
