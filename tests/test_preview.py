"""``wb.preview``: the right rows, seeded samples, images as real PNG thumbnails, sparse rows as
their nonzero indices."""

from __future__ import annotations

import base64
import struct

import numpy as np
import pytest

import workbench as wb
from workbench.errors import InvalidInputError
from workbench.explore.previews import image_kind


def test_first_and_random_rows_are_the_sources():
    x = np.arange(400, dtype="float32").reshape(100, 4)
    p = wb.preview(x, n=5)
    assert p.indices == [0, 1, 2, 3, 4] and p.kinds == {"x": "vector"}
    np.testing.assert_array_equal(np.stack(p.columns["x"]), x[:5])
    r1, r2 = wb.preview(x, n=6, random=True, seed=7), wb.preview(x, n=6, random=True, seed=7)
    assert r1.indices == r2.indices == sorted(set(r1.indices)) and r1.indices != list(range(6))
    np.testing.assert_array_equal(np.stack(r1.columns["x"]), x[r1.indices])
    assert wb.preview(x[:3], n=10).indices == [0, 1, 2]
    with pytest.raises(InvalidInputError, match="n=0"):
        wb.preview(x, n=0)


@pytest.mark.parametrize(
    "shape,mode", [((8, 8), 0), ((16, 12, 3), 2), ((3, 16, 12), 2), ((16, 12, 1), 0)]
)
def test_image_rows_become_png_thumbnails(shape, mode):
    imgs = np.random.default_rng(0).random((4, *shape)).astype("float32")
    p = wb.preview(imgs, n=4)
    assert p.kinds["x"] == "image"
    page = p._repr_html_()
    uris = [part.split("'")[0] for part in page.split("src='")[1:]]
    assert len(uris) == 4
    png = base64.b64decode(uris[0].removeprefix("data:image/png;base64,"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, color = struct.unpack(">IIBB", png[16:26])
    hw = (shape[1], shape[2]) if shape[0] == 3 else shape[:2]
    assert (h, w, depth, color) == (*hw, 8, mode)
    assert "image" in str(p)


def test_image_kind_rules():
    assert image_kind((8, 8)) and image_kind((28, 28, 1)) and image_kind((3, 32, 32))
    assert not image_kind((16,)) and not image_kind((2, 2)) and not image_kind((5, 5, 7))


def test_sparse_rows_show_their_nonzeros(tmp_path):
    raw = wb.make_demo(tmp_path / "raw", rows=300)
    store = tmp_path / "d.store"
    wb.convert(raw.csv, store, target="label", sparse={"tokens": raw.sparse_dim}, progress=False)
    p = wb.preview(store, n=4)
    assert p.kinds["tokens"] == "sparse"
    dense = wb.open_dataset(store).get_batch([0, 1, 2, 3])["tokens"].numpy()
    for i in range(4):
        np.testing.assert_array_equal(p.columns["tokens"][i], np.flatnonzero(dense[i]))
    assert "nonzeros [" in str(p)
    assert "&lt;" in wb.preview({"<i>": np.zeros(3)}, n=1)._repr_html_()
