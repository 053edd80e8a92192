"""Inter-coder agreement (model/outputs/agreement.py, `python run.py agreement`): Krippendorff's
alpha against a hand computation, and the command on a folder with a second coding."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from model.outputs import agreement

from .conftest import DATA, cli
from .test_cli import assert_refused

KNOWN = DATA / "known"


def test_alpha_of_two_coders_by_hand():
    # units (1, 1), (2, 2), (3, 4): D_o = (1/6) x 2 x 1^2 = 1/3; the six values' squared differences
    # over ordered pairs sum to 82, so D_e = 82 / (6 x 5); alpha = 1 - D_o / D_e = 36/41
    first, second = {"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.0, "c": 4.0}
    assert agreement.alpha(first, second) == pytest.approx(36 / 41)
    assert agreement.alpha(first, first) == pytest.approx(1.0)
    assert np.isnan(agreement.alpha({"a": 5.0, "b": 5.0}, {"a": 5.0, "b": 5.0}))  # no variation: undefined


def _folder(tmp_path, change):
    folder = tmp_path / "cases"
    (folder / "second-coding").mkdir(parents=True)
    shutil.copy(KNOWN / "known.yaml", folder)
    raw = yaml.safe_load((KNOWN / "known.yaml").read_text())
    change(raw)
    (folder / "second-coding" / "known.yaml").write_text(yaml.safe_dump(raw))
    return folder


def test_agreement_command_compares_the_codings(tmp_path):
    def recode(raw):
        raw["members"]["X"]["ideal"]["a"] = 30  # the second coder puts X 10 points higher on issue a

    folder = _folder(tmp_path, recode)
    done = cli("agreement", str(folder), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    row = pd.read_csv(tmp_path / "out" / "agreement.csv").iloc[0]
    assert row["case"] == "known" and row["units"] == 8  # 4 voting members x 2 issues
    assert row["mean_abs_difference"] == pytest.approx(10 / 8)
    assert 0 < row["alpha_positions"] < 1 and row["alpha_salience"] == pytest.approx(1.0)
    # the weighted median of issue a: X (0.4 of the weight) at 20 -> 20; at 30 -> 30 (observed 40)
    assert row["weighted_median_mae_first"] == pytest.approx((20 + 22) / 2)
    assert row["weighted_median_mae_second"] == pytest.approx((10 + 22) / 2)
    assert "Inter-coder agreement" in done.stdout


def test_a_second_coding_of_other_members_is_refused(tmp_path):
    folder = _folder(tmp_path, lambda raw: raw["members"].pop("V"))
    assert_refused(cli("agreement", str(folder), "--quiet", "--out", str(tmp_path / "out")),
                   "does not code the same voting members")


def test_a_second_coding_without_a_first_is_refused(tmp_path):
    folder = _folder(tmp_path, lambda raw: None)
    (folder / "second-coding" / "known.yaml").rename(folder / "second-coding" / "other.yaml")
    assert_refused(cli("agreement", str(folder), "--quiet", "--out", str(tmp_path / "out")), "other.yaml",
                   "no first coding")
