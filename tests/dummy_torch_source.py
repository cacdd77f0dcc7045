"""A test source's registry module (docs/contributing.md: Adding a source): two PyTorch entries, one left out."""

from dummy_sources import TorchEntry, registry

entries, excluded, by_id = registry("dummy_torch", TorchEntry)
