"""Explore a dataset before training on it: ``inspect`` (layout, chunks, page cache, what each
order costs), with statistics, previews, the pitfall doctor and layout advice to come here.

``facts`` is pure (the storage facts and the cost arithmetic); ``gather`` reads them from each
kind of storage's metadata; ``inspect`` puts them together. Text and HTML are drawn by
``workbench.ui.reprs``, so the CLI and the notebook show the same facts.
"""

__all__: list[str] = []
