"""The clustering algorithms, one family per module; `core/clustering.py` is their registry."""
