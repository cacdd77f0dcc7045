"""Generators of the committed data files under imagenet_bench/data (run as ``python -m tools.NAME``)."""
