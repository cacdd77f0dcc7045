"""Running models over a dataset after argparse: PyTorch, Keras, the runner and its processes."""
