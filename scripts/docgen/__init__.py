"""Documentation tooling: the generated parts of README.md and docs/, made from kept files.

Every figure the README and the documentation site show is either generated from a kept
result file (``docs/results/<job>/`` for the grids, ``benchmarks/results/*.json`` for the
benchmarks) or links to one. A generated part lies between two marker comments; this package
renders it and rewrites or checks it. The library (``src/h2q``) never writes these files.

- :mod:`docgen.sections`: markers, :class:`~docgen.sections.Section`, rewrite and check;
- :mod:`docgen.kept`: copy a grid's small outputs into its kept folder;
- :mod:`docgen.grids`: the results pages of the main job and the WordNet grid;
- :mod:`docgen.scale`, :mod:`docgen.text`, :mod:`docgen.bench_pages`: benchmark tables;
- :mod:`docgen.headline`: the README's three headline figures;
- :mod:`docgen.registry`: every generated section and the page it lives in.

``scripts/generate_docs.py`` and ``scripts/keep_results.py`` are the command-line front ends.
"""
