"""Comparison: what a change of training (learning rate, seed, frozen layers, cleaned labels) did to the
representation, from several runs' saved snapshots (``lightning-ner-viz compare``).

One module per concern: :mod:`.runs` (loading the runs and matching their snapshots, tokens and labels),
:mod:`.metrics` (CKA, label-centroid distances and the tokens whose neighbour words changed, pure NumPy),
:mod:`.frame` (every run's clouds in the reference run's frame), :mod:`.compare` (the whole comparison),
and its outputs: :mod:`.payload` and :mod:`.html` (the report), :mod:`.rerun` (the recording) and
:mod:`.table` (the terminal summary). Only the command line imports this package.
"""

__all__: list[str] = []  # internal modules; the command is `lightning-ner-viz compare`
