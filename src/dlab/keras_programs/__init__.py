"""Keras 3 variants of the programs (backend-agnostic: keras.ops only)."""
