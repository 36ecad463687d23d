"""Learned embeddings of one numerical feature, one module per technique.

Both follow Gorishniy, Rubachev and Babenko, "On Embeddings for Numerical Features
in Tabular Deep Learning" (NeurIPS 2022).
"""

from synthembed.layers.numerical.periodic import PeriodicEmbedding
from synthembed.layers.numerical.piecewise_linear import PiecewiseLinearEmbedding

__all__ = ["PeriodicEmbedding", "PiecewiseLinearEmbedding"]
