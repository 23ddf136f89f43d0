"""webmill: seed URLs to model weights, on Ray."""

__version__ = "0.1.0"
