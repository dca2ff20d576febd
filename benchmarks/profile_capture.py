"""Profile the training-thread side of the callback (evidence for docs/performance.md).

Runs ``trainer.validate`` a few times with the capture-only callback and prints a
pyinstrument profile (``pip install pyinstrument``).

    python benchmarks/profile_capture.py --model tiny-bert --sentences 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.quiet()

from overhead import our_callback, tracked_ids  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny-bert", choices=sorted(C.MODELS))
    parser.add_argument("--sentences", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reducer", default="cheap", help="cheap | pca | umap")
    parser.add_argument("--first-epoch", action="store_true", help="profile the first epoch (no tracked tokens)")
    parser.add_argument("--html", help="also write an HTML profile here")
    args = parser.parse_args()
    from pyinstrument import Profiler

    C.set_threads(None)
    work = tempfile.mkdtemp(prefix="ner-viz-prof-")
    model, dl = C.build_model(args.model), C.loader(args.sentences)
    reducer = C.CheapReducer() if args.reducer == "cheap" else args.reducer
    cb = our_callback(reducer, os.path.join(work, "snap"))
    trainer = C.trainer([cb])
    trainer.validate(model, dataloaders=dl, verbose=False)  # warm-up
    if not args.first_epoch:
        cb.tracked_ids = tracked_ids(args.sentences, work)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(args.repeats):
        if args.first_epoch:
            cb.tracked_ids = None
        trainer.validate(model, dataloaders=dl, verbose=False)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html())


if __name__ == "__main__":
    main()
