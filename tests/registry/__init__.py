"""A package, so that its conftest.py (the tracking server) does not shadow tests/conftest.py."""
