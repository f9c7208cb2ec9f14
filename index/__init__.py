"""Layer 3: the computation: Numba kernels, assessments, commodity, sector and composite
levels, weights, researcher formulas, and the repository code that loads their inputs."""
