"""Numba kernels: plain numpy arrays in, numpy arrays out."""
