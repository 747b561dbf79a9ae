"""Samplers: token ids in -> completion ids, sampling log-probs and finish reasons out."""
