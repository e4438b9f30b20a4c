"""Formatting of the grid's tables, statistics and verdict."""

from __future__ import annotations

import csv
import io

import pytest

from h2q.experiments.config import get_config
from h2q.experiments.records import CellRecord
from h2q.experiments.report import improvements_of, verdict
from h2q.experiments.stats import summarize
from h2q.experiments.tables import (
    cells_csv,
    improvements_csv,
    improvements_markdown,
    lambda_csv,
    map_header,
    table_csv,
    table_markdown,
)

VARIANT = (
    "mAP@1000 (top-k relevant denominator; empty queries score 0; ties broken by continuous "
    "distance)"
)


def _record(row, n_bits, seed, value, method="dpsh", **kw):
    return CellRecord.from_dict(
        dict(
            method=method,
            row=row,
            n_bits=n_bits,
            seed=seed,
            map_at_k=value,
            map_variant="",
            k=1000,
            map_all=value,
            precision_at_k=value,
            quantization_loss=0.25,
            fit_time_s=0.1,
            stage1_run="dpsh/lambda0/b16/s0",
            **kw,
        )
    )


@pytest.fixture
def config():
    return get_config("default", methods=("dpsh",), bits=(16, 32), seeds=(0, 1), rows=("itq",))


@pytest.fixture
def records():
    return [
        _record("lambda0", 16, 0, 0.5000),
        _record("lambda0", 16, 1, 0.5100),
        _record("itq", 16, 0, 0.5200),
        _record("itq", 16, 1, 0.5300),
        _record("lambda0", 32, 0, 0.6000),
        _record("lambda0", 32, 1, 0.6000),
        # itq at 32 bits missing: shown as n/a
    ]


def test_map_header_names_the_variant():
    assert map_header(1000) == VARIANT
    assert "ties broken by database id" in map_header(5, tie_break=False)


def test_table_markdown(config, records):
    text = table_markdown(summarize(records), config, 1000)
    lines = text.splitlines()
    assert lines[0].startswith(VARIANT + " x100; mean ± sample std over 2 seeds (0, 1)")
    assert lines[2] == "| method | strategy | 16 bits | 32 bits |"
    assert lines[3] == "|:---|:---|---:|---:|"
    assert lines[4] == "| DPSH | λ = 0 | 50.50 ± 0.71 | 60.00 ± 0.00 |"
    assert lines[5] == "| DPSH | +ITQ | 52.50 ± 0.71 | n/a |"
    assert len(lines) == 6


def test_table_markdown_one_seed_has_no_spread(records):
    config = get_config("default", methods=("dpsh",), bits=(16,), seeds=(0,), rows=())
    text = table_markdown(summarize([r for r in records if r.seed == 0]), config, 1000)
    assert "one seed (0)" in text
    assert "| DPSH | λ = 0 | 50.00 |" in text
    assert "±" not in text.splitlines()[-1]


def test_table_csv(config, records):
    rows = list(csv.DictReader(io.StringIO(table_csv(summarize(records), config, 1000))))
    assert [r["row"] for r in rows] == ["lambda0", "itq"]
    assert rows[0]["metric"] == VARIANT + " x100"
    assert float(rows[0]["16 bits mean"]) == pytest.approx(50.5)
    assert float(rows[0]["16 bits std"]) == pytest.approx(0.7071, abs=1e-4)
    assert rows[1]["32 bits mean"] == ""
    assert rows[1]["n_seeds"] == "2"


def test_improvements_markdown_and_csv(config, records):
    imps = improvements_of(records, config)
    assert [(i.row, i.baseline) for i in imps] == [("itq", "lambda0")]
    md = improvements_markdown(imps)
    assert md.startswith(
        "Gain in mAP points (x100) per (method, bits) cell; intervals: 95% "
        "paired t interval over 2 seeds."
    )
    # Both seeds gain exactly 2 points: a zero-width t interval, detected.
    assert "| +ITQ | λ = 0 | +2.00 | [+2.00, +2.00] | +2.00 | +2.00 | +2.00 | 1 / 0 / 0 |" in md
    rows = list(csv.DictReader(io.StringIO(improvements_csv(imps))))
    assert rows[0]["wins"] == "1" and rows[0]["cells"] == "1" and rows[0]["higher"] == "1"
    assert float(rows[0]["mean"]) == pytest.approx(2.0)
    assert float(rows[0]["ci_low"]) == pytest.approx(2.0)


def test_verdict_without_per_query_ap_says_so():
    """Cells without per-query AP (one seed) give gains but no intervals, and say so."""
    config = get_config("default", methods=("dpsh",), bits=(16, 32), seeds=(0,))
    won = [
        _record("lambda0", 16, 0, 0.50),
        _record("h2q-l2", 16, 0, 0.52),
        _record("lambda0", 32, 0, 0.60),
        _record("h2q-l2", 32, 0, 0.61),
        _record("itq", 16, 0, 0.53),
        _record("itq", 32, 0, 0.60),
    ]
    lines = verdict(improvements_of(won, config))
    assert lines[0] == (
        "+H²Q (L2) vs λ = 0: mean +1.50 mAP points (no interval could be computed); higher mean "
        "in 2 of 2 cells."
    )
    assert any(x.startswith("+H²Q (L2) vs +ITQ: mean +0.00 mAP points") for x in lines)


def test_lambda_and_cells_csv():
    rec = _record("penalty", 16, 0, 0.4, lam=0.1, lambda_selection={"0.1": 0.45, "1": None})
    rows = list(csv.DictReader(io.StringIO(lambda_csv([rec]))))
    assert [(r["lambda"], r["chosen"], r["val_map"]) for r in rows] == [
        ("0.1", "True", "0.45"),
        ("1", "False", ""),
    ]
    rows = list(csv.DictReader(io.StringIO(cells_csv([rec]))))
    assert rows[0]["lambda"] == "0.1" and float(rows[0]["map_at_k"]) == pytest.approx(0.4)
