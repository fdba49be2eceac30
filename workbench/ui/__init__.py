"""The UI room: the only modules that import ipywidgets, Bokeh, tqdm or IPython's display.

Everything here is a thin shell over the public functions; ``import workbench`` never loads it.
"""

__all__: list[str] = []
