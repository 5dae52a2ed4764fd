"""Experiments: scenario files, one run (the learning joined to the timeline), sweeps of many
runs, and regression suites against a baseline."""
