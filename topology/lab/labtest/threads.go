package labtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/cnitrace/cnitrace/topology"
)

// ThreadsOutsideNetNS lists the OS threads of this process whose network
// namespace is not want. Tests use it to prove no thread was left behind in a
// foreign namespace.
func ThreadsOutsideNetNS(want *topology.NetNS) ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	var stray []int
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join("/proc/self/task", t.Name(), "ns", "net"), &st); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				continue // the thread exited meanwhile
			}
			return nil, fmt.Errorf("stat netns of thread %d: %w", tid, err)
		}
		if st.Ino != want.Inode() {
			stray = append(stray, tid)
		}
	}
	return stray, nil
}
