"""Jupyter: a run's HTML report and Rerun recording inline in a notebook (:func:`show`).

Importing this package imports neither IPython nor Rerun, torch or Lightning; :func:`show` imports IPython
(and Rerun's notebook viewer, when it shows a recording) when it runs.
"""

from __future__ import annotations

from lightning_ner_viz.notebook.inline import NotInNotebookError, in_kernel, report_iframe, show
from lightning_ner_viz.notebook.outputs import RunOutputs, find_outputs

__all__ = ["NotInNotebookError", "RunOutputs", "find_outputs", "in_kernel", "report_iframe", "show"]
