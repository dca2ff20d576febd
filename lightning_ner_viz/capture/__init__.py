"""Capture: every rank hooks the validation forward, selects tokens on the device and gathers them."""
