"""A test source's registry module (docs/contributing.md: Adding a source): two Keras entries, one left out."""

from dummy_sources import KerasEntry, registry

entries, excluded, by_id = registry("dummy_keras", KerasEntry)
