"""kbuild-py: declarative kernel hardening profiles in, verified hardened kernels out."""

__version__ = "0.1.0"
