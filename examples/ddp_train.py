"""Train a small model with DistributedDataParallel on CPU (gloo), reading a workbench dataset.

    torchrun --standalone --nproc_per_node=2 examples/ddp_train.py --data demo_data/demo.store

``wb.loader`` takes the rank and world size from the process group, so each rank reads its own
disjoint share of every epoch, with the same number of batches on every rank. Every
``--save-every`` steps each rank saves its model, optimizer and ``loader.state_dict()`` to
``--out``; once all ranks have saved, rank 0 marks that step committed. ``--resume`` continues from
the last committed step exactly: a run killed mid-epoch and resumed ends with the same weights as
one that was never stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import workbench as wb


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a workbench dataset (e.g. demo_data/demo.store)")
    p.add_argument("--out", default="ddp_out", help="checkpoints and the final weights go here")
    p.add_argument("--features", default="features", help="input column")
    p.add_argument("--target", default="label", help="integer class column")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=10, help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the last committed step")
    p.add_argument(
        "--record",
        default=None,
        help="append each batch's values of this column to "
        "OUT/rows.rank<R>.jsonl (tests check which rows each rank read)",
    )
    p.add_argument("--step-sleep", type=float, default=0.0, help="seconds to sleep per step")
    return p.parse_args()


def _save(out: Path, rank: int, step: int, state: dict) -> None:
    tmp = out / f".ckpt.rank{rank}.step{step}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, out / f"ckpt.rank{rank}.step{step}.pt")


def _commit(out: Path, step: int) -> None:
    tmp = out / ".COMMITTED.tmp"
    tmp.write_text(json.dumps({"step": step}))
    os.replace(tmp, out / "COMMITTED")  # the checkpoint of `step` is whole on every rank


def main() -> None:
    args = _args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    ds = wb.open_dataset(args.data)
    dl = wb.loader(
        ds,
        batch_size=args.batch_size,
        shuffle="full",
        seed=args.seed,
        num_workers=0,
        drop_last=True,
    )  # rank and world size come from the process group
    n_in = int(ds[0][args.features].numel())
    classes = int(max(int(ds.get_batch(range(len(ds)))[args.target].max()), 1)) + 1
    model = DistributedDataParallel(torch.nn.Linear(n_in, classes))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)

    step, epoch = 0, 0
    if args.resume and (out / "COMMITTED").exists():
        step = json.loads((out / "COMMITTED").read_text())["step"]
        state = torch.load(out / f"ckpt.rank{rank}.step{step}.pt", weights_only=False)
        model.module.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        dl.load_state_dict(state["loader"])  # the rest of the epoch, exactly
        epoch = state["loader"]["epoch"]
    record = open(out / f"rows.rank{rank}.jsonl", "a") if args.record else None
    for epoch in range(epoch, args.epochs):
        dl.set_epoch(epoch)
        for batch in dl:
            x = batch[args.features].float().reshape(len(batch[args.target]), -1)
            loss = torch.nn.functional.cross_entropy(model(x), batch[args.target].long())
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if record is not None:
                record.write(
                    json.dumps({"epoch": epoch, "rows": batch[args.record].tolist()}) + "\n"
                )
                record.flush()
            if step % args.save_every == 0:
                _save(
                    out,
                    rank,
                    step,
                    {
                        "model": model.module.state_dict(),
                        "optimizer": opt.state_dict(),
                        "loader": dl.state_dict(),
                    },
                )
                dist.barrier()
                if rank == 0:
                    _commit(out, step)
                dist.barrier()  # committed everywhere: older checkpoints are no longer needed
                for old in out.glob(f"ckpt.rank{rank}.step*.pt"):
                    if int(old.stem.rsplit("step", 1)[1]) < step:
                        old.unlink()
            time.sleep(args.step_sleep)
    if rank == 0:
        torch.save(model.module.state_dict(), out / "final.pt")
        print(f"rank 0 of {world}: {step} steps, last loss {loss.item():.4f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
