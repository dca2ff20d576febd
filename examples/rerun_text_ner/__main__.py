"""Named entities and token embeddings of one text, logged to Rerun.

A port of Rerun's ``llm_embedding_ner`` example that runs offline: instead of
downloading ``dslim/bert-base-NER`` it fine-tunes a small BERT tagger on the bundled
product-title data (a few seconds on a CPU), or loads a local Hugging Face
token-classification model with ``--model PATH``. It logs

- ``text``: the original text;
- ``tokenized_text``: every token, each a link ``recording://umap_embeddings[#i]`` to its point;
- ``named_entities``: the entities found;
- ``umap_embeddings``: the 3-D cloud of token embeddings (UMAP, or PCA for short texts),
  coloured by entity type, with the token and its entity on hover.

Run it::

    python -m examples.rerun_text_ner --text "prostokvashino kefir 2.5% 930 ml strawberry"
    python -m examples.rerun_text_ner --save ner.rrd      # write a file instead of opening a viewer
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import numpy as np
import rerun as rr
import torch

DEFAULT_TEXT = (
    "prostokvashino kefir 2.5% 930 ml; savushkin strawberry yogurt 1.5% 125 g; "
    "alpen gold chocolate 90 g for kids; valio butter 82.5% 200 g"
)


def train_small_tagger(epochs: int = 4) -> tuple[Any, Any, list[str]]:
    """A tiny BERT token classifier trained on the bundled titles: (tokenizer, model, label names)."""
    import lightning.pytorch as pl
    from transformers import AutoModelForTokenClassification

    from lightning_ner_viz.demo.data import LABEL_NAMES, generate_examples, iter_text
    from lightning_ner_viz.demo.datamodule import NerDataModule
    from lightning_ner_viz.demo.model import HFTokenClassifier, tiny_bert_config
    from lightning_ner_viz.demo.tokenizer import train_wordpiece

    examples = generate_examples(1500, seed=0)
    tokenizer = train_wordpiece(iter_text(examples))
    model = AutoModelForTokenClassification.from_config(tiny_bert_config(len(tokenizer), LABEL_NAMES, hidden_size=96))
    pl.seed_everything(0, verbose=False)
    pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, accelerator="cpu").fit(
        HFTokenClassifier(model, lr=2e-3), NerDataModule(examples, examples[:32], tokenizer, LABEL_NAMES))
    return tokenizer, model.eval(), LABEL_NAMES


def load_local_model(path: str) -> tuple[Any, Any, list[str]]:
    """A local Hugging Face token-classification model directory."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(path).eval()
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return AutoTokenizer.from_pretrained(path), model, names


def embed_and_tag(text: str, tokenizer: Any, model: Any, label_names: list[str]) -> tuple[list[str], np.ndarray, list[str], list[int]]:
    """Tokens (without special tokens), their last hidden states, predicted BIO labels and word indices."""
    words = re.findall(r"[^\s,;:!?()]+", text)
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt", truncation=True)
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    keep = [i for i, w in enumerate(enc.word_ids()) if w is not None]
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0, keep].tolist())
    hidden = out.hidden_states[-1][0, keep].numpy()
    labels = [label_names[i] for i in out.logits[0, keep].argmax(-1).tolist()]
    word_of = [enc.word_ids()[i] for i in keep]
    return tokens, hidden, labels, word_of


def entities_from_bio(tokens: list[str], labels: list[str], word_of: list[int]) -> list[tuple[str, str]]:
    """(entity text, type) spans from BIO token labels; pieces of one word are glued back."""
    spans: list[tuple[str, str]] = []
    previous_word, previous_kind = None, None
    for token, label, word in zip(tokens, labels, word_of):
        piece = token[2:] if token.startswith("##") else token
        kind = label[2:] if label != "O" else None
        same_word = word == previous_word
        if kind is not None and spans and previous_kind == kind and (label.startswith("I-") or same_word):
            spans[-1] = (spans[-1][0] + ("" if same_word else " ") + piece, kind)
        elif kind is not None:
            spans.append((piece, kind))
        previous_word, previous_kind = word, kind
    return spans


def entity_per_token(labels: list[str]) -> list[str]:
    """The entity type of each token, or ``O``."""
    return [label[2:] if label != "O" else "O" for label in labels]


def project_3d(hidden: np.ndarray) -> np.ndarray:
    """UMAP to 3-D (as the original example), or PCA when the text is too short for UMAP."""
    from lightning_ner_viz.reducers import PCAReducer, UMAPReducer

    if len(hidden) > 15:
        return UMAPReducer(n_components=3, n_neighbors=min(15, len(hidden) - 1), pca_dims=None).fit_transform(hidden)
    return PCAReducer(n_components=3).fit_transform(hidden)


def log_text(text: str) -> None:
    rr.log("text", rr.TextDocument(text, media_type=rr.MediaType.MARKDOWN))


def log_tokenized_text(tokens: list[str]) -> None:
    links = " ".join(f"[{token}](recording://umap_embeddings[#{i}])" for i, token in enumerate(tokens))
    rr.log("tokenized_text", rr.TextDocument(links, media_type=rr.MediaType.MARKDOWN))


def log_named_entities(entities: list[tuple[str, str]]) -> None:
    listing = "\n".join(f"- **{text}**: {kind}" for text, kind in entities) or "No entities found."
    rr.log("named_entities", rr.TextDocument(listing, media_type=rr.MediaType.MARKDOWN))


def log_embeddings(coords: np.ndarray, tokens: list[str], labels: list[str]) -> None:
    from lightning_ner_viz.sinks.colors import label_colors

    types = entity_per_token(labels)
    classes = ["O", *sorted(set(types) - {"O"})]
    colors = label_colors(classes)
    rr.log("/", rr.AnnotationContext([rr.AnnotationInfo(id=i, label=name, color=colors[i]) for i, name in enumerate(classes)]),
           static=True)
    rr.log(
        "umap_embeddings",
        rr.Points3D(coords, class_ids=[classes.index(t) for t in types], radii=rr.Radius.ui_points(6.0)),
        rr.AnyValues(**{"Token": tokens, "Named Entity": types}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the text to analyse")
    parser.add_argument("--model", help="a local Hugging Face token-classification model directory "
                        "(default: train a small tagger on the bundled data)")
    parser.add_argument("--train-epochs", type=int, default=4, help="epochs for the small tagger (default: %(default)s)")
    rr.script_add_args(parser)
    args = parser.parse_args()
    tokenizer, model, label_names = load_local_model(args.model) if args.model else train_small_tagger(args.train_epochs)
    tokens, hidden, labels, word_of = embed_and_tag(args.text, tokenizer, model, label_names)
    rr.script_setup(args, "rerun_example_llm_embedding_ner")
    log_text(args.text)
    log_tokenized_text(tokens)
    log_named_entities(entities_from_bio(tokens, labels, word_of))
    log_embeddings(project_3d(hidden), tokens, labels)
    rr.script_teardown(args)


if __name__ == "__main__":
    main()
