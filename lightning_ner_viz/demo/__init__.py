"""The bundled demo: generated product-title NER data, a local tokenizer and a small tagger."""
