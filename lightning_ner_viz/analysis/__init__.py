"""Analysis: drift, separation and quality numbers for each epoch, in the original feature space.

One module per concern: :mod:`.drift` (CKA, displacement, centroid shift, prediction change),
:mod:`.quality` (silhouette, kNN purity, trustworthiness), :mod:`.entity_f1` (seqeval's
entity F1) and :mod:`.epoch_metrics`, which gathers them for one snapshot. ``_checks`` holds
their shared input check. Nothing here imports the capture, projection or sink stages.
"""

__all__: list[str] = []  # internal modules; the public API is lightning_ner_viz and lightning_ner_viz.sinks
