"""Thin adapters to engines that run h2q's codes beyond one process.

- :mod:`h2q.integrations.milvus` (extra ``h2q[milvus]``): :class:`MilvusHammingIndex`, a
  Milvus collection of binary vectors with :class:`h2q.HammingIndex`'s surface; a file path
  means the embedded Milvus Lite, an ``http://host:19530`` URI a Milvus server or cluster.
- :mod:`h2q.integrations.spark` (extra ``h2q[spark]``): :func:`encode_dataframe` and
  :func:`batch_search` over Spark DataFrames; ``local[2]`` by default, any master by URL.

Nothing here is imported by ``import h2q``; each module imports its engine when loaded.
"""

from ._fingerprint import quantizer_checksum

__all__ = ["quantizer_checksum"]
