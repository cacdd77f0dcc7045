"""Prediction files into per-image marks and counts: columns, the score cache, metrics."""
