"""Progress: a callback the producers call, drawn by the UI shell as tqdm's meter in a terminal
and as one in-place display in a real Jupyter kernel (so a saved notebook shows the end state)."""

from __future__ import annotations

import subprocess
import sys

import nbclient
import numpy as np
from nbformat.v4 import new_code_cell, new_notebook

import workbench as wb
from workbench.ui.progress import reporter


def test_convert_calls_a_callback_with_rows_done_and_total(tmp_path):
    calls = []
    wb.convert(
        np.zeros((5000, 4), "float32"),
        tmp_path / "x.store",
        shard_bytes=16_000,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert len(calls) > 3 and calls[-1] == (5000, 5000)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and all(t == 5000 for _, t in calls)


def test_a_csv_of_unknown_length_reports_an_estimated_total(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i * 0.5}\n" for i in range(3000)))
    calls = []
    wb.convert(path, tmp_path / "d.store", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (3000, 3000)
    assert all(t is not None and abs(t - 3000) / 3000 < 0.2 for _, t in calls)


def test_silent_and_bar_reporters(capsys):
    quiet = reporter(False, "x")
    quiet(1, 2)
    quiet.close()
    bar = reporter(True, "convert -> demo.store")
    bar(20_000, 20_000)
    bar.close()
    assert (
        bar.meter().startswith("convert -> demo.store: 100%|")
        and "20,000/20,000 rows" in bar.meter()
    )
    assert "100%" in capsys.readouterr().err


def test_the_cli_draws_a_finished_bar_on_stderr(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2000, 3), "float32"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "convert",
            str(tmp_path / "x.npy"),
            str(tmp_path / "x.store"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "100%" in out.stderr and "2,000/2,000 rows" in out.stderr


def test_a_notebook_saves_the_finished_bar_not_a_frozen_widget(tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell(
                "import numpy as np, workbench as wb\n"
                "m = wb.convert(np.zeros((30000, 8), 'float32'), 'x.store', shard_bytes=100_000)"
            )
        ]
    )
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = nb.cells[0].outputs
    assert len(outputs) == 1, outputs  # one display, updated in place
    data = outputs[0]["data"]
    text = data["text/plain"]
    assert "100%" in text and "30,000/30,000 rows" in text and len(text) <= 100
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert "width:100.0%" in data["text/html"] and "&lt;" in data["text/html"]  # escaped meter
