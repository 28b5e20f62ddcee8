"""The outlook chapter's library (chapters/07_lab/outlook.md): three small studies on the registry's mixers.

* :mod:`postlib.outlook.roofline` — arithmetic intensity (FLOPs and bytes counted from formulas)
  against measured throughput, for the flash tiling, the chunked/fused scan and chunked linear
  attention; recorded by ``python -m postlib.bench roofline``.
* :mod:`postlib.outlook.long_context` — ultra-long context by chunking (a carried state streams
  any length in constant memory) and by retrieval (top-k attention over a large memory).
* :mod:`postlib.outlook.probe` — interpretability: what a trained Mamba's state forgets (its
  input-dependent decay per token) and what it stores (linear probes on the state).
"""
