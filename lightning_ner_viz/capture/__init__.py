"""Capture: every rank hooks the validation forward, selects tokens on the device and gathers them."""

__all__: list[str] = []  # internal modules; the public API is lightning_ner_viz and lightning_ner_viz.sinks
