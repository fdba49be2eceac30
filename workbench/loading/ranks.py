"""Which data-parallel rank this process is: the loader's ``rank``/``world_size`` when given,
else those of an initialised ``torch.distributed`` process group (as ``DistributedSampler``
does, so a script launched by ``torchrun`` needs no extra arguments), else rank 0 of 1.

>>> resolve(None, None), resolve(1, 4)
((0, 1), (1, 4))
"""

from __future__ import annotations

__all__: list[str] = []


def resolve(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: explicit arguments win over the process group."""
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        group_rank, group_size = dist.get_rank(), dist.get_world_size()
    else:
        group_rank, group_size = 0, 1
    return (
        group_rank if rank is None else int(rank),
        group_size if world_size is None else int(world_size),
    )
