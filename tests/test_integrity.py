"""Corruption matrix: every kind of damage × every layout raises a named error naming the file."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.errors import CorruptDatasetError, WorkbenchError
from workbench.format.catalog import read_manifest
from workbench.format.sparse import CSR

X = np.random.default_rng(0).random((4000, 8)).astype("float32")
TOK = CSR.from_lists([[i % 50, 50 + i % 7] for i in range(4000)], dim=100, index_dtype="int32")


def _make(tmp_path, layout):
    dest = tmp_path / "d"
    wb.convert({"x": X, "tok": TOK}, dest, format=layout, shard_bytes=40 * 1000, progress=False)
    version, m = read_manifest(dest)
    return dest, version, m


def _victim(version, m):
    """The biggest file of the middle shard (a data file, so flips land in payload bytes)."""
    shard = m.shards[len(m.shards) // 2]
    f = max(shard.files, key=lambda f: f.bytes)
    return version / f.path


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:-1])


def extend(path):
    with open(path, "ab") as f:
        f.write(b"\0")


def flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x40
    path.write_bytes(bytes(data))


def delete(path):
    path.unlink()


DAMAGE = {"truncate": truncate, "extend": extend, "flip": flip, "delete": delete}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_shard_is_named(tmp_path, layout, damage):
    dest, version, m = _make(tmp_path, layout)
    victim = _victim(version, m)
    DAMAGE[damage](victim)
    with pytest.raises(CorruptDatasetError) as e:
        wb.verify(dest)
    assert str(victim) in str(e.value)
    report = wb.verify(dest, strict=False)
    assert not report.ok and all(str(victim) in p for p in report.problems)
    if damage != "flip":  # size changes are caught cheaply when the dataset is opened
        with pytest.raises(CorruptDatasetError, match=victim.name):
            read_manifest(dest)


def test_every_bad_shard_is_named(tmp_path, layout):
    dest, version, m = _make(tmp_path, layout)
    victims = [version / max(s.files, key=lambda f: f.bytes).path for s in m.shards[:2]]
    for v in victims:
        flip(v)
    problems = wb.verify(dest, strict=False).problems
    assert all(any(str(v) in p for p in problems) for v in victims)


@pytest.mark.parametrize(
    "garble",
    [
        lambda t: t[: len(t) // 2],
        lambda t: t.replace('"rows"', '"rowz"', 1),
        lambda t: t.replace('"format_version": 1', '"format_version": 99'),
        lambda t: "[]",
        lambda t: t.replace('"path": "0', '"path": "../0', 1),
    ],
)
def test_garbled_manifest_raises(tmp_path, layout, garble):
    dest, version, _ = _make(tmp_path, layout)
    mf = version / "manifest.json"
    mf.write_text(garble(mf.read_text()))
    with pytest.raises(CorruptDatasetError, match="manifest"):
        read_manifest(dest)
    with pytest.raises(CorruptDatasetError):
        wb.verify(dest)


def test_missing_manifest_and_garbled_pointer(tmp_path):
    dest, version, _ = _make(tmp_path, "store")
    (dest / "CURRENT").write_text("../etc\n")
    with pytest.raises(CorruptDatasetError, match="CURRENT"):
        read_manifest(dest)
    (dest / "CURRENT").write_text(version.name)
    (version / "manifest.json").unlink()
    with pytest.raises(CorruptDatasetError, match="missing"):
        read_manifest(dest)


def test_reads_never_modify_files(tmp_path, layout):
    dest, version, m = _make(tmp_path, layout)
    before = {
        p: (p.stat().st_size, p.stat().st_mtime_ns) for p in version.rglob("*") if p.is_file()
    }
    wb.verify(dest)
    truncate(_victim(version, m))
    with pytest.raises(WorkbenchError):
        wb.verify(dest)
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in version.rglob("*") if p.is_file()}
    changed = [p for p in before if before[p] != after[p]]
    assert changed == [_victim(version, m)]


def test_clean_dataset_verifies(tmp_path, layout):
    dest, _, m = _make(tmp_path, layout)
    report = wb.verify(dest)
    assert report.ok and report.shards == len(m.shards) > 2 and report.bytes == m.nbytes
    assert "OK" in str(report)


def test_missing_shard_is_named_when_the_path_has_spaces(tmp_path, layout):
    dest = tmp_path / "my data" / "d set"
    wb.convert({"x": X}, dest, format=layout, shard_bytes=40 * 1000, progress=False)
    version, m = read_manifest(dest)
    victim = _victim(version, m)
    victim.unlink()
    with pytest.raises(CorruptDatasetError) as e:
        wb.verify(dest)
    assert f"{victim} is missing" in str(e.value)
