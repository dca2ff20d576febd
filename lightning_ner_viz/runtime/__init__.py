"""Runtime: the background job runner and the lifecycle that wires the capture to the rendering."""

__all__: list[str] = []  # internal modules; the public API is lightning_ner_viz and lightning_ner_viz.sinks
