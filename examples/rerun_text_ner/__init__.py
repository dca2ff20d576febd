"""Rerun's ``llm_embedding_ner`` example, ported to run offline on a local model."""
