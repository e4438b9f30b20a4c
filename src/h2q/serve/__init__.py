"""A search service over fitted quantizers: a JSON API and a page (the ``serve`` extra).

- :func:`create_app`: the FastAPI application over a :class:`Catalog` of served indexes;
- :func:`load_files`, :func:`load_run`, :func:`load_results`, :func:`load_folder`,
  :func:`demo_catalog`: build that catalog from the files of ``h2q fit`` / ``h2q encode``, a
  run folder, a results folder, or the demo.

``h2q serve`` (:mod:`h2q.cli.serve`) starts it with uvicorn. Importing this package imports
FastAPI.
"""

from .app import SearchRequest, create_app
from .demo import demo_catalog
from .engine import Catalog, ServedIndex, build_index
from .errors import ApiError
from .items import ItemStore
from .loading import load_files, load_folder, load_results, load_run

__all__ = [
    "ApiError",
    "Catalog",
    "ItemStore",
    "SearchRequest",
    "ServedIndex",
    "build_index",
    "create_app",
    "demo_catalog",
    "load_files",
    "load_folder",
    "load_results",
    "load_run",
]
