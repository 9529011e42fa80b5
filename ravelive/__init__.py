"""ravelive: play neural audio models (RAVE / nn~ streaming exports) live."""

__version__ = "0.1.0"
