"""The one compiled piece: workbench.datasets._take, the multi-shard row gather (metadata lives in
pyproject.toml). ``optional``: without a C compiler the install still succeeds and the readers use
numpy (``workbench.datasets.gather.native`` says which)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "workbench.datasets._take",
            ["workbench/datasets/_take.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
