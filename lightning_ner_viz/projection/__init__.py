"""Projection: each view reduced to 2-D/3-D in a stable frame (in a child process), then logged to the sinks."""

__all__: list[str] = []  # internal modules; the public API is lightning_ner_viz and lightning_ner_viz.sinks
