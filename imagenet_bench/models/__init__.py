"""Where models come from: the table of sources, each source's registry, published figures."""
