"""Evaluation: metrics reports (`foley eval`), paired comparisons, attribute analyzers, control tests.

Modules: :mod:`.analyzers` (DSP attribute measurements), :mod:`.extractors` (feature-extractor
interface and registry), :mod:`.metrics` (FD, KID, FD∞, k-NN, KL, IS), :mod:`.paired` (LSD, mel
distance, SI-SDR, chroma, loudness), :mod:`.sanity`, :mod:`.stats` (bootstrap, subsets, AUC),
:mod:`.run` (reports), :mod:`.compare`, :mod:`.control`, :mod:`.html`. Importing this package is cheap.
"""
