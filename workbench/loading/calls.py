"""The ``wb.loader(...)`` line a person can paste, built in one place for every shell that prints
one: ``workbench tune``, ``wb.tune``'s code button, the layout advice and ``wb.doctor``'s fixes
(pure: what a config needs said is :meth:`~workbench.loading.config.LoaderConfig.loader_options`).

>>> loader_call({"batch_size": 512, "shuffle": "full", "num_workers": None})
"wb.loader(ds, batch_size=512, shuffle='full', num_workers=None)"
>>> loader_call({}, "wb.open_dataset('data.store')")
"wb.loader(wb.open_dataset('data.store'))"
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def value_code(value: Any) -> str:
    """``value`` as Python source: a function or class by its name (the user's own, in scope
    where the line runs), anything else by its ``repr`` (literals read back as themselves).

    >>> def augment(batch): return batch
    >>> value_code(augment), value_code(None), value_code("block"), value_code(2.5)
    ('augment', 'None', "'block'", '2.5')
    """
    name = getattr(value, "__qualname__", None)
    if callable(value) and isinstance(name, str) and name.replace(".", "_").isidentifier():
        return name
    return repr(value)


def loader_call(options: dict[str, Any], dataset_name: str = "ds") -> str:
    """``wb.loader(<dataset_name>, k=v, ...)`` with every one of ``options``, in their order;
    a value given is printed as given, ``None`` (the loader's own choice) included."""
    args = [dataset_name, *(f"{k}={value_code(v)}" for k, v in options.items())]
    return f"wb.loader({', '.join(args)})"
