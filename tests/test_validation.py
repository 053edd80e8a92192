"""Validation against history: baselines, the comparison and its table, the historical scenarios,
observed-block errors, the folder command, and calibration."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from model.experiments import calibration
from model.experiments.batch import run_chunk
from model.negotiation import rules
from model.negotiation.params import build_params
from model.negotiation.results import to_frame
from model.outputs import validation
from model.outputs.report import OUTCOME_KNOWN, render, summarize
from model.scenario.files import load_scenario, validate
from model.scenario.schema import ScenarioError

from .conftest import DATA, REPO, TINY, cli, make_scenario

KNOWN = DATA / "known"
HISTORY = sorted((REPO / "scenarios" / "history").glob("*.yaml"))


# ---------------------------------------------------------------- baselines, by hand
def test_baselines_on_a_hand_computed_three_member_case():
    x = np.array([[[10.0], [50.0], [90.0]]])  # (R=1, n=3, K=1)
    equal = np.ones((3, 1))
    assert rules.weighted_median(x, equal)[0, 0] == 50.0
    assert rules.compromise(x, equal)[0, 0] == pytest.approx(50.0)
    heavy_low = np.array([[3.0], [1.0], [1.0]])  # cumulative 3 of 5 at 10: past half
    assert rules.weighted_median(x, heavy_low)[0, 0] == 10.0
    assert rules.compromise(x, heavy_low)[0, 0] == pytest.approx((30 + 50 + 90) / 5)
    heavy_high = np.array([[1.0], [1.0], [2.0]])  # cumulative 2 of 4 at 50: exactly half -> midpoint with 90
    assert rules.weighted_median(x, heavy_high)[0, 0] == 70.0
    assert rules.compromise(x, heavy_high)[0, 0] == pytest.approx((10 + 50 + 180) / 4)
    assert rules.plain_mean(x, np.array([True, True, False]))[0, 0] == pytest.approx(30.0)
    # members out of order, a zero-weight member between: it is skipped, not taken as the midpoint
    y = np.array([[[90.0], [10.0], [60.0], [50.0]]])
    w = np.array([[2.0], [1.0], [0.0], [1.0]])  # sorted 10 (1), 50 (1), 60 (0), 90 (2): half at 50
    assert rules.weighted_median(y, w)[0, 0] == 70.0


def test_baselines_of_a_scenario_use_point_codes_and_voting_members_only():
    s = make_scenario({"A": {"x": 20}, "B": {"x": 60}, "C": {"x": 80}, "D": {"x": 100}},
                      capability={"A": 0.5, "B": 0.3, "C": 0.2, "D": 5.0},
                      members={"D": {"voting": False}, "A": {"ideal": {"x": {"dist": "pert", "low": 0, "mode": 20,
                                                                           "high": 90}}}})
    base = validation.baselines(s)
    assert base["compromise"]["x"] == pytest.approx(0.5 * 20 + 0.3 * 60 + 0.2 * 80)
    assert base["weighted_median"]["x"] == pytest.approx(40.0)  # half reached exactly at 20
    assert base["plain_mean"]["x"] == pytest.approx((20 + 60 + 80) / 3)


# ---------------------------------------------------------------- the comparison, on a known answer
@pytest.fixture(scope="module")
def known_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("known") / "out"
    done = cli(str(KNOWN), "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done


def test_validation_table_matches_the_hand_computed_answer(known_folder):
    out, done = known_folder
    table = pd.read_parquet(out / "validation.parquet")
    pd.testing.assert_frame_equal(table, pd.read_csv(out / "validation.csv"), check_dtype=False)
    row = table[(table["scenario"] == "known")].set_index("issue")
    expected = {  # see the header of tests/data/known/known.yaml
        "a": dict(observed=40, predicted=44, p05=44, p95=44, abs_error=4, compromise=44, compromise_abs_error=4,
                  weighted_median=40, weighted_median_abs_error=0, plain_mean=160 / 3,
                  plain_mean_abs_error=160 / 3 - 40),
        "b": dict(observed=38, predicted=36, p05=36, p95=36, abs_error=2, compromise=36, compromise_abs_error=2,
                  weighted_median=40, weighted_median_abs_error=2, plain_mean=30, plain_mean_abs_error=8),
    }
    for issue, values in expected.items():
        for key, value in values.items():
            assert row.loc[issue, key] == pytest.approx(value, abs=1e-9), (issue, key)
        assert not row.loc[issue, "inside_90"]  # a point interval at 44 does not hold 40
    assert validation.overall_mae(table) == pytest.approx(
        {"model": 3.0, "compromise": 3.0, "weighted_median": 1.0, "plain_mean": (40 / 3 + 8) / 2})
    cases = pd.read_csv(out / "validation-cases.csv").set_index("scenario")
    assert cases.loc["known", "p_consensus"] == 1.0 and cases.loc["known", "median_round"] == 1
    assert cases.loc["known", "p_last_round"] == 0.0 and cases.loc["known", "holdout_recall"] == 0.0
    summary = json.loads((out / "known" / "summary.json").read_text())
    v = summary["validation"]
    assert v["timing"]["abs_error"] == 0.0  # observed not late, model agrees in round 1 of 4
    late = json.loads((out / "known-late" / "summary.json").read_text())["validation"]
    assert late["timing"]["abs_error"] == 1.0
    assert v["consensus"] == {"observed": True, "predicted": 1.0, "ci95": v["consensus"]["ci95"], "matched": True,
                              "abs_error": 0.0}
    assert v["holdouts"]["observed"] == [{"member": "Z", "name": "Zland", "p": 0.0}]
    assert v["caveat"] == OUTCOME_KNOWN
    for name in ("validation.png", "validation.svg"):
        assert (out / "figures" / name).stat().st_size > 0
    assert "Mean absolute error over 4 observed levels (2 summits)" in done.stdout
    assert "weighted median" in done.stdout and "coded knowing the real outcome" in done.stdout
    assert "does not beat the best baseline here (weighted median, 1.0)" in done.stdout


def test_compare_reports_interval_holdouts_and_never_agreed():
    s = load_scenario(TINY)
    df = to_frame(run_chunk(s, 7, 0, 200, "ensemble"))
    summary = summarize(df, s, 7)
    v = summary["validation"]
    for name, row in v["issues"].items():
        issue = summary["issues"][name]
        assert row["predicted"] == issue["mean"] and row["abs_error"] == pytest.approx(abs(issue["mean"] - 50))
        assert row["inside_90"] == (issue["p05"] <= 50 <= issue["p95"])
    shares = {h["member"]: h["p"] for h in summary["holdouts"]}
    assert v["holdouts"]["top_predicted"][0]["p"] == max(shares.values())
    assert "Validation against the observed outcome" in render(summary)
    never = df.assign(level_spending=np.nan, agreed_spending=False)
    v2 = summarize(never, s, 7)["validation"]
    assert v2["issues"]["spending"]["predicted"] is None and v2["issues"]["spending"]["abs_error"] is None
    assert v2["mae"]["model"] == pytest.approx(v2["issues"]["ukraine"]["abs_error"])
    assert "never agreed" in render(summarize(never, s, 7))


def test_holdout_scores():
    assert validation.holdout_scores({"A": 0.5, "B": 0.25, "C": 0.25}, ["A", "C"]) == (0.375, 0.75)
    assert validation.holdout_scores({}, ["A"]) == (0.0, None)
    assert validation.holdout_scores({"A": 1.0}, []) == (None, None)


# ---------------------------------------------------------------- the historical scenarios
@pytest.mark.parametrize("path", HISTORY, ids=lambda p: p.stem)
def test_each_historical_scenario_loads_runs_and_validates(path):
    s = load_scenario(path)
    assert s.observed is not None and set(s.observed.levels) == set(s.issues)
    assert s.observed.consensus and s.observed.late and s.observed.holdouts and s.run.seed is not None
    df = to_frame(run_chunk(s, s.run.seed, 0, 60, "ensemble"))
    v = summarize(df, s, s.run.seed)["validation"]
    assert set(v["issues"]) == set(s.issues)
    for row in v["issues"].values():
        assert row["predicted"] is not None and 0 <= row["p05"] <= row["predicted"] <= row["p95"] <= 100
        for b in validation.BASELINES:
            assert 0 <= row[b] <= 100
    assert v["mae"]["model"] is not None


# ---------------------------------------------------------------- observed-block errors
def _known_raw() -> dict:
    return yaml.safe_load((KNOWN / "known.yaml").read_text())


@pytest.mark.parametrize(("change", "expected"), [
    ({"levels": {"a": 40, "zz": 10}}, "observed.levels.zz: unknown issue; known: a, b"),
    ({"wording": {"zz": "text"}}, "observed.wording.zz: unknown issue"),
    ({"holdouts": ["Z", "QQQ"]}, "observed.holdouts: unknown member 'QQQ'"),
    ({"levels": {"a": 120}}, "observed.levels.a: Input should be less than or equal to 100 (got 120)"),
    ({"late": "sometimes"}, "observed.late: Input should be a valid boolean"),
    ({"consensus": None}, "observed.consensus"),
    ({"levelz": {}}, "observed.levelz: unknown key"),
])
def test_observed_block_errors_name_the_key(change, expected):
    raw = _known_raw()
    raw["observed"] = raw["observed"] | change
    with pytest.raises(ScenarioError) as err:
        validate(raw, "known.yaml")
    assert expected in str(err.value) and str(err.value).startswith("known.yaml: ")


def test_folder_errors_exit_2_naming_file_and_key(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = cli(str(empty), "--quiet")
    assert done.returncode == 2 and f"{empty}: no scenario files" in done.stderr and "Traceback" not in done.stderr
    unobserved = tmp_path / "unobserved"
    unobserved.mkdir()
    raw = _known_raw()
    del raw["observed"]
    (unobserved / "plain.yaml").write_text(yaml.safe_dump(raw))
    done = cli(str(unobserved), "--quiet")
    assert done.returncode == 2 and "plain.yaml: observed: missing" in done.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    raw = _known_raw()
    raw["observed"]["levels"]["zz"] = 3
    (bad / "bad.yaml").write_text(yaml.safe_dump(raw))
    done = cli(str(bad), "--quiet")
    assert done.returncode == 2 and "bad.yaml: observed.levels.zz: unknown issue" in done.stderr
    done = cli(str(TINY), "--calibrate", "--quiet")
    assert done.returncode == 2 and "--calibrate needs a folder" in done.stderr


def test_a_scenario_written_outside_the_team_validates_without_code_change(tmp_path):
    """The documented minimal example of docs/scenario-format.md, plus an observed block."""
    doc = (REPO / "docs" / "scenario-format.md").read_text()
    example = doc.split("## A minimal complete example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    raw = yaml.safe_load(example)
    raw["observed"] = {"consensus": True, "levels": {"ukraine": 50, "spending": 50}, "holdouts": ["HUN"],
                       "late": True}
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "example.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    done = cli(str(folder), "--runs", "50", "--workers", "1", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "out" / "validation.csv")
    assert table["issue"].tolist() == ["ukraine", "spending"] and table["abs_error"].notna().all()


# ---------------------------------------------------------------- calibration
def test_with_behaviour_equals_a_full_rebuild():
    case = calibration.load_cases(KNOWN)[0]
    values = {"member_defaults.anchoring": 0.3, "member_defaults.concession": 2.0, "member_defaults.tolerance": 4.0,
              "member_defaults.reservation": 25.0, "protocol.acceptance_noise": 1.5, "protocol.objector_pull": 0.2}
    assert set(values) == set(calibration.PARAMETERS)
    s = case.scenario(values)
    fast = calibration.with_behaviour(build_params(case.scenario({})), s)
    full = build_params(s)
    for field in ("anchoring", "concession", "tolerance", "reservation", "linkage", "influence", "capability",
                  "ideal_args"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(full, field), err_msg=field)
    assert (fast.acceptance_noise, fast.objector_pull, fast.rounds) == (1.5, 0.2, 4)


def test_calibration_metrics_agree_with_the_validation_summary():
    s = load_scenario(REPO / "scenarios" / "history" / "madrid-2022.yaml")
    table = run_chunk(s, 5, 0, 300, "ensemble")
    m = calibration.case_metrics(table, s)
    v = summarize(to_frame(table), s, 5)["validation"]
    assert m["level"] == pytest.approx(v["mae"]["model"])
    assert m["p_consensus"] == pytest.approx(v["consensus"]["predicted"])
    assert m["p_last_round"] == pytest.approx(v["timing"]["last_round"])
    assert m["holdout_recall"] == pytest.approx(v["holdouts"]["recall"])
    assert m["holdout_precision"] == pytest.approx(v["holdouts"]["precision"])


def test_calibration_writes_fits_and_leave_one_out(tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "FINALISTS", 2)
    cases = calibration.load_cases(KNOWN)
    report = calibration.calibrate(cases, tmp_path, runs=10, final_runs=20, points=4, workers=1, quiet=True)
    assert set(report["fits"]) == {"all", "without known", "without known-late"}
    for fit in report["fits"].values():
        assert fit["objective"] <= fit["objective_at_file_values"] + 1e-9 or fit["point"] == 0
        assert set(fit["values"]) == set(calibration.PARAMETERS)
    loso = pd.read_csv(tmp_path / "calibration.csv")
    held = loso[loso["role"] == "held out"]
    assert sorted(held["case"]) == ["known", "known-late"]
    assert (held["compromise_mae"] == 3.0).all()
    screen = pd.read_csv(tmp_path / "calibration-screen.csv")
    assert len(screen) == 5 * 2 and (screen["runs"] == 10).all()  # 4 Sobol points + the files' values, 2 cases
    again = calibration.calibrate(cases, tmp_path / "again", runs=10, final_runs=20, points=4, quiet=True)
    assert again["fits"] == report["fits"]  # fixed design seed and scenario seeds: reproducible
    text = calibration.render(report)
    assert "Leave-one-summit-out" in text and "small sample" in text


def test_calibration_keeps_member_inputs(tmp_path):
    """Calibrated values are defaults: a member's own value (its coded input) is never overridden."""
    raw = copy.deepcopy(_known_raw())
    raw["members"]["Z"]["concession"] = 0.5
    raw["name"] = "zed"
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "z.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(KNOWN / "known.yaml", folder / "known.yaml")
    case = [c for c in calibration.load_cases(folder) if c.name == "zed"][0]
    s = case.scenario({"member_defaults.concession": 3.0})
    assert s.behaviour("Z").concession == 0.5 and s.behaviour("X").concession == 3.0
