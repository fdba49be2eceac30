"""Naive loaders the benchmarks compare workbench against (see ``seeds``)."""
