"""Projection: each view reduced to 2-D/3-D in a stable frame (in a child process), then logged to the sinks."""
