"""The port of Rerun's llm_embedding_ner example runs offline and logs what the original logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from rrd_reading import read_rrd

ROOT = Path(__file__).resolve().parents[1]


def test_example_logs_text_links_entities_and_cloud(tmp_path):
    out = tmp_path / "ner.rrd"
    text = "savushkin kefir 2.5% 930 ml"
    done = subprocess.run([sys.executable, "-m", "examples.rerun_text_ner", "--text", text, "--train-epochs", "1",
                           "--save", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rrd(out)
    assert rows["/text"][0]["TextDocument:text"] == [text]
    links = re.findall(r"\[([^\]]+)\]\(recording://umap_embeddings\[#(\d+)\]\)", rows["/tokenized_text"][0]["TextDocument:text"][0])
    cloud = rows["/umap_embeddings"][0]
    assert [int(i) for _, i in links] == list(range(len(cloud["Points3D:positions"])))  # a link per point
    assert [t for t, _ in links] == cloud["Token"]
    assert len(cloud["Named Entity"]) == len(cloud["Token"]) and len(cloud["Points3D:class_ids"]) == len(cloud["Token"])
    labels = {c["class_description"]["info"]["label"] for c in rows["/"][0]["AnnotationContext:context"][0]}
    assert set(cloud["Named Entity"]) <= labels  # every class shown has a name and colour
    assert rows["/named_entities"][0]["TextDocument:text"][0]
