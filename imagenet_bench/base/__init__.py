"""The bottom layer: errors and exit statuses, atomic writes, the 1000 classes."""
