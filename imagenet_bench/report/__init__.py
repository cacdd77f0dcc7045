"""The ranked table after argparse, and its renderings: text, CSV, JSON, HTML, plots, label issues."""
