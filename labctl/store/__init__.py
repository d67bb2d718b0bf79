"""The run store: run folders and the run registry."""
