"""How far points move per epoch in each reducer x frame, when the model barely changes and when it learns.

Trains the tiny BERT tagger twice (learning rate 1e-6: the model barely changes; 1e-3: it learns),
saves one snapshot per epoch with the callback, then projects the same snapshots with every
reducer and frame (the projection the callback would have made). The number is the mean distance
a token moved between consecutive epochs, as a percentage of the cloud's extent (its largest axis
range), averaged over the epochs. A truthful frame shows little movement at lr 1e-6.

    python benchmarks/frame_jitter.py [--epochs 4] [--sentences 1500]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common as C
import numpy as np

FRAMES = ("auto", "procrustes", "fixed", "warm", "independent")
REDUCERS = ("pca", "umap", "tsne")


def capture(lr: float, epochs: int, sentences: int, root: Path) -> list:
    """Snapshots of a fit at this learning rate (PCA inline: only the saved vectors are used)."""
    from lightning_ner_viz import EmbeddingDriftCallback, load_snapshots

    model = C.build_model("tiny-bert")
    model.lr = lr
    model.train()
    callback = EmbeddingDriftCallback(sinks=[], max_tokens=1000, save_dir=str(root), background=False,
                                      tokenizer=C.tokenizer(), entity_view=False)
    C.trainer([callback], max_epochs=epochs).fit(model, C.loader(sentences, shuffle=True, seed=2), C.loader(400))
    return load_snapshots(root)


def jitter(snapshots: list, reducer: str, frame: str) -> float:
    """Mean per-epoch displacement of the hidden view, in % of the previous epoch's extent."""
    from lightning_ner_viz.projection.frame_names import check_reducer_frame, resolve_frame
    from lightning_ner_viz.projection.procrustes import extent
    from lightning_ner_viz.projection.projector import Projector

    check_reducer_frame(reducer, resolve_frame(frame, reducer))
    projector = Projector(reducer, 3, 0, frame)
    coords = [projector.project(s).coords["hidden"] for s in snapshots]
    moves = []
    for (a, xa), (b, xb) in zip(zip(snapshots, coords), zip(snapshots[1:], coords[1:])):
        shared, ia, ib = np.intersect1d(a.token_id, b.token_id, return_indices=True)
        step = np.linalg.norm(xb[ib] - xa[ia], axis=1).mean()
        moves.append(100 * step / extent(xa[ia]))
    return float(np.mean(moves))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--sentences", type=int, default=1500)
    args = parser.parse_args()
    C.quiet()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = {lr: capture(lr, args.epochs, args.sentences, Path(tmp) / f"lr{lr}") for lr in (1e-6, 1e-3)}
        for reducer in REDUCERS:
            for frame in FRAMES:
                if (frame == "warm" and reducer == "pca"):
                    continue
                cells = [f"{jitter(runs[lr], reducer, frame):.1f}%" for lr in runs]
                rows.append([reducer, frame, *cells])
                print(rows[-1], flush=True)
    C.emit("frame jitter", C.table(["reducer", "frame", "moved per epoch, lr 1e-6", "moved per epoch, lr 1e-3"], rows),
           f"python benchmarks/frame_jitter.py --epochs {args.epochs} --sentences {args.sentences}",
           [f"Tiny BERT tagger, {args.sentences} training titles, 400 validation titles, 1,000 tokens, "
            f"{args.epochs} epochs; mean over epochs of the mean token displacement / cloud extent."])


if __name__ == "__main__":
    main()
