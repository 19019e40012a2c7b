"""Theorem-checking numerical experiments for diffusion-model samplers on exact-score targets."""

__version__ = "0.1.0"
