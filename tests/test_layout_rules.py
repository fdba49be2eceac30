"""The advice rules on plain situations: each recommendation follows from the facts given."""

from __future__ import annotations

from workbench.explore.layout_rules import BLOCK_BYTES, Situation, recommend


def _sit(**kw) -> Situation:
    base = dict(
        bytes=1 << 30,
        ram=16 << 30,
        row_bytes=1024,
        rows=1 << 20,
        layout="page",
        amplification={"sequential": 1.0, "block": 1.0, "full": 4.0},
        shuffle="full",
        batch_size=1024,
        source="d.store",
        is_ours=True,
    )
    return Situation(**{**base, **kw})


def _by_topic(s: Situation) -> dict:
    return {r.topic: r for r in recommend(s)}


def test_data_larger_than_the_page_cache_gets_block_order_with_the_cost_said():
    r = _by_topic(_sit(bytes=40 << 30, ram=16 << 30))["shuffle"]
    assert r.value == "block" and "160.0 GiB" in r.reason and "4x" in r.reason
    assert "shuffle='block'" in _by_topic(_sit(bytes=40 << 30))["loader"].code


def test_data_that_fits_keeps_full_order_and_is_warmed():
    r = _by_topic(_sit(bytes=1 << 30, ram=16 << 30))["shuffle"]
    assert r.value == "full" and r.code.startswith('wb.warm("d.store")')


def test_chunked_foreign_layouts_are_converted_and_our_store_is_kept():
    h5 = _by_topic(
        _sit(
            layout="hdf5 chunk",
            is_ours=False,
            source="x.h5",
            amplification={"full": 30.0, "block": 1.0},
        )
    )["layout"]
    assert (
        h5.value == "store" and "30x" in h5.reason and h5.code == 'wb.convert("x.h5", "data.store")'
    )
    assert _by_topic(_sit())["layout"].value == "keep the store"


def test_block_rows_make_blocks_of_about_4_mib_and_threads_follow_batch_bytes():
    block = int(_by_topic(_sit(row_bytes=1000))["block rows"].value.replace(",", ""))
    assert block & (block - 1) == 0 and BLOCK_BYTES / 2 < block * 1000 <= BLOCK_BYTES
    assert "num_workers=None" in _by_topic(_sit(batch_size=256))["loader"].value
    assert "num_workers=2" in _by_topic(_sit(batch_size=4096))["loader"].value
