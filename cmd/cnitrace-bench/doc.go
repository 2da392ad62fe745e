// Command cnitrace-bench is the lab accuracy benchmark behind `make bench`.
// It builds the netns lab, injects known faults, runs the shipped cnitrace
// binary and iputils ping side by side in one run, and prints one table of
// figures; the same figures go to bench/results/<date>.json. It measures;
// it does not pass or fail on the figures (the goals are printed beside
// them).
package main
