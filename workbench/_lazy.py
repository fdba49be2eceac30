"""Public names that load on first use (PEP 562), for every package's face: ``import workbench``
(or ``workbench.loading``) pulls neither torch nor h5py until a name that needs them is asked for,
and no face imports its own submodules, so faces never take part in an import cycle."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def attach(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the module ``package``; ``exports`` maps a public name to the
    module that defines it, relative to the package it is in. A name is looked up once, then
    cached."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, sys.modules[package].__package__), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
