// Command fakeprog stands in for the node's iptables-save and nft in the
// tests: built static (CGO_ENABLED=0), it runs in a fake host root it is
// chrooted to, where nothing else exists. It prints its arguments, its
// environment and what it sees of the root, then does what its arguments
// ask:
//
//	sleep     sleep for a minute (the timeout test)
//	spew N    print N more bytes (the output limit test)
//	fail      print a line on stderr and exit 3
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	fmt.Printf("argv: %s\n", strings.Join(os.Args, " "))
	for _, e := range os.Environ() {
		fmt.Printf("env: %s\n", e)
	}
	wd, _ := os.Getwd()
	fmt.Printf("cwd: %s\n", wd)
	if _, err := os.Stat("/fake-root"); err == nil {
		fmt.Println("root: fake")
	}
	args := os.Args[1:]
	switch {
	case len(args) > 0 && args[0] == "sleep":
		time.Sleep(time.Minute)
	case len(args) > 1 && args[0] == "spew":
		n, _ := strconv.Atoi(args[1])
		os.Stdout.Write([]byte(strings.Repeat("x", n)))
	case len(args) > 0 && args[0] == "fail":
		fmt.Fprintln(os.Stderr, "fakeprog: asked to fail")
		os.Exit(3)
	}
	fmt.Fprintln(os.Stderr, "fakeprog: a warning on stderr")
}
