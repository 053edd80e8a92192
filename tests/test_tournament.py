"""The forecasting tournament: scores against hand-computed cases, the table on the known folder
(tests/data/known, fixed ideal points, so every predictor's answer is worked by hand), the command's
files, and its refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from model.outputs import tournament
from model.outputs.tournament import Forecast
from model.scenario.files import load_scenario

from .conftest import DATA, cli
from .test_cli import assert_refused

KNOWN = DATA / "known"


def one_level(sample, events=None, n=None) -> Forecast:
    sample = np.asarray(sample, float)
    return Forecast({"a": float(sample.mean())}, {"a": sample}, events or {}, n or len(sample))


# ---------------------------------------------------------------- scores, by hand
def test_level_scores_of_a_two_point_ensemble():
    scenario = load_scenario(KNOWN / "known.yaml", ["observed.levels={a: 50}"])
    rows = tournament.level_rows("c", scenario, {"two": one_level([40, 60]), "point": one_level([44])})
    two, point = rows
    # CRPS = E|X - y| - E|X - X'| / 2 = 10 - (0 + 20 + 20 + 0) / 4 / 2 = 5
    assert two["crps"] == pytest.approx(5.0) and two["abs_error"] == 0.0
    # the 5 % and 95 % quantiles of {40, 60} are 41 and 59: width 18, no miss
    assert two["interval_score"] == pytest.approx(18.0) and two["cover90"] and two["cover50"]
    assert two["pit"] == 0.5  # one draw below, one above
    # a point forecast: CRPS = |error| = 6, interval score = 0 width + 20 x the miss of 6 = 120, PIT 1
    assert point["crps"] == pytest.approx(6.0) and point["interval_score"] == pytest.approx(120.0)
    assert point["pit"] == 1.0 and not point["cover90"]


def test_event_scores_of_known_probabilities():
    scenario = load_scenario(KNOWN / "known.yaml")
    f = one_level([40], {("consensus", ""): 0.7, ("changed", "a"): 0.2}, n=10)
    rows = {(r["kind"], r["item"]): r for r in tournament.event_rows("c", scenario, {"f": f})}
    assert rows[("consensus", "")]["brier"] == pytest.approx(0.09)  # (0.7 - 1)^2
    assert rows[("consensus", "")]["log_score"] == pytest.approx(-np.log(7.5 / 11))  # (0.7 x 10 + 1/2) / 11
    assert rows[("changed", "a")]["brier"] == pytest.approx(0.64)  # a moved 30 -> 40: (0.2 - 1)^2
    assert np.isnan(rows[("late", "")]["brier"])  # no forecast of the timing: NaN, not a zero


def test_auc_counts_ties_half():
    p = np.array([0.9, 0.1, 0.1, 0.5])
    happened = np.array([True, False, True, False])
    # pairs (held out, did not): (0.9, 0.1) 1, (0.9, 0.5) 1, (0.1, 0.1) 1/2, (0.1, 0.5) 0 -> 2.5 / 4
    assert tournament.auc(p, happened) == pytest.approx(0.625)
    assert np.isnan(tournament.auc(p, np.zeros(4, bool)))


def test_skill_interval_is_paired_over_cases_and_absent_for_one_case():
    levels = pd.DataFrame([{"case": c, "predictor": p, "issue": "a", "abs_error": e, "crps": e, "interval_score": e,
                            "cover50": True, "cover90": True}
                           for c, errors in (("c1", (1, 3)), ("c2", (2, 5)), ("c3", (4, 6)))
                           for p, e in zip(("model", "other"), errors)])
    events = pd.DataFrame([{"case": c, "predictor": p, "kind": "consensus", "item": "", "p": 1.0, "happened": True,
                            "brier": 0.0, "log_score": 0.0} for c in ("c1", "c2", "c3") for p in ("model", "other")])
    s = tournament.skill(levels, events).set_index(["score", "predictor"]).loc[("crps", "other")]
    assert s["difference"] == pytest.approx((2 + 3 + 2) / 3) and s["cases"] == 3
    assert 2.0 <= s["low"] <= s["difference"] <= s["high"] <= 3.0  # resampled means of {2, 3, 2}
    assert not s["includes_zero"]
    one = tournament.skill(levels[levels["case"] == "c1"], events[events["case"] == "c1"])
    assert np.isnan(one.loc[0, "low"]) and one.loc[0, "includes_zero"] is None


# ---------------------------------------------------------------- the known case, by hand
@pytest.fixture(scope="module")
def known_case():
    scenario = load_scenario(KNOWN / "known.yaml")
    forecasts = tournament.predictor_forecasts(scenario, seed=1, draws=8)
    levels = pd.DataFrame(tournament.level_rows("known", scenario, forecasts))
    events = pd.DataFrame(tournament.event_rows("known", scenario, forecasts))
    return forecasts, levels, events


def test_predictors_on_the_known_case(known_case):
    forecasts, levels, _ = known_case
    # win-sets: issue a (q 30, caring voters X 20, Z 80): [10, 30] & [30, 130] = {30}; issue b (q 20,
    # V 10, Y 60): [0, 20] & [20, 100] = {20}: Nash, egalitarian and setter keep the status quo
    for name in ("status_quo", "nash", "egalitarian", "setter"):
        assert forecasts[name].point == {"a": 30.0, "b": 20.0}, name
    assert forecasts["compromise"].point == pytest.approx({"a": 32 / 0.7, "b": 13 / 0.3})
    assert forecasts["plain_mean"].point == pytest.approx({"a": 50.0, "b": 42.5})
    assert forecasts["weighted_median"].point == pytest.approx({"a": 20.0, "b": 60.0})
    board = tournament.table(levels, known_case[2]).set_index("predictor")
    assert board.loc["nash", "mae"] == pytest.approx((10 + 18) / 2)  # observed 40, 38
    assert board.loc["nash", "crps"] == pytest.approx(14.0)  # fixed ideals: every draw is the point
    assert board.loc["plain_mean", "mae"] == pytest.approx(7.25)


def test_changed_and_holdout_events_on_the_known_case(known_case):
    _, _, events = known_case
    board = tournament.table(pd.DataFrame(), events).set_index("predictor")
    # both issues moved (30 -> 40, 20 -> 38): a status-quo keeper says P(changed) = 0: Brier 1
    assert board.loc["nash", "brier_changed"] == 1.0 and board.loc["compromise", "brier_changed"] == 0.0
    # compromise (45.7, 43.3): salience-weighted losses against the status quo are X 15.7, Z -15.7,
    # Y -23.3, V 23.3: V is the predicted holdout; Z held out. Brier over X, Z, Y, V = (0+1+0+1)/4;
    # AUC: Z (p 0) against X 0, Y 0 (ties: 1/2 each) and V 1 (0) -> 1/3
    assert board.loc["compromise", "brier_holdout"] == pytest.approx(0.5)
    assert board.loc["compromise", "auc_holdout"] == pytest.approx(1 / 3)
    assert board.loc["status_quo", "auc_holdout"] == 0.5  # nobody loses: no holdout, all tied
    assert np.isnan(board.loc["nash", "brier_consensus"])  # only the model forecasts consensus


# ---------------------------------------------------------------- the command
def test_one_case_folder_has_no_skill_interval(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(KNOWN / "known.yaml", folder)
    done = cli("validate", str(folder), "--workers", "1", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "no interval (one case)" in done.stdout
    skill = pd.read_csv(tmp_path / "out" / "tournament-skill.csv")
    assert skill["low"].isna().all() and skill["difference"].notna().all()


def test_calibrated_model_runs_each_case_at_its_held_out_fold(tmp_path):
    names = ("known", "known-late")
    fits = {f"without {n}": {"fitted_on": [m for m in names if m != n], "held_out": n,
                             "values": {"protocol.preparatory_cost_share": 0.1}} for n in names}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"fits": {"all": {"fitted_on": list(names), "held_out": None, "values": {}}, **fits}}))
    done = cli("validate", str(KNOWN), "--workers", "1", "--quiet", "--out", str(tmp_path / "out"),
               "--calibration", str(path))
    assert done.returncode == 0, done.stderr
    board = pd.read_csv(tmp_path / "out" / "tournament.csv").set_index("predictor")
    assert "model_calibrated" in board.index
    # at a preparatory share of 0.1, known agrees only at the summit, as known-late does
    late = json.loads((tmp_path / "out" / "known-calibrated" / "summary.json").read_text())
    assert late["agreement_round"]["last_round"]["p"] == 1.0


@pytest.mark.parametrize(("content", "named"), [
    ("not json", "not a calibration.json written by `python run.py calibrate`"),
    (json.dumps({"fits": {"all": {"fitted_on": ["known", "known-late"], "held_out": None, "values": {}}}}),
     "every fit saw known"),
])
def test_bad_calibration_file_is_refused(tmp_path, content, named):
    path = tmp_path / "calibration.json"
    path.write_text(content)
    assert_refused(cli("validate", str(KNOWN), "--quiet", "--out", str(tmp_path / "out"), "--calibration", str(path)),
                   str(path), named)


def test_a_case_without_a_status_quo_is_refused(tmp_path):
    folder = tmp_path / "noq"
    folder.mkdir()
    raw = yaml.safe_load((KNOWN / "known.yaml").read_text())
    del raw["issues"]["a"]["status_quo"]
    (folder / "case.yaml").write_text(yaml.safe_dump(raw))
    assert_refused(cli("validate", str(folder), "--quiet", "--out", str(tmp_path / "out")), "issues.a.status_quo")


def test_a_test_case_is_scored_at_the_fit_on_the_train_cases(tmp_path):
    from model.experiments.history import calibrated_overrides

    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"fits": {
        "all": {"fitted_on": ["a", "b"], "values": {"x": 1}},
        "without a": {"fitted_on": ["b"], "values": {"x": 2}},
        "without b": {"fitted_on": ["a"], "values": {"x": 3}}}}))
    # a train case: the fold that held it out; a test case (c): the fit on all the train cases
    assert calibrated_overrides(path, ["a", "b", "c"]) == {"a": ["x=2"], "b": ["x=3"], "c": ["x=1"]}


# ---------------------------------------------------------------- the frozen split
def _split_folder(tmp_path, split: dict, broken_test: bool = False):
    folder = tmp_path / "split"
    folder.mkdir()
    shutil.copy(KNOWN / "known.yaml", folder)
    if broken_test:
        (folder / "known-late.yaml").write_text("name: [this file is not a scenario\n")
    else:
        shutil.copy(KNOWN / "known-late.yaml", folder)
    (folder / "split.yaml").write_text(yaml.safe_dump(split))
    return folder


def test_calibration_never_reads_a_test_case(tmp_path):
    from model.experiments import calibration

    folder = _split_folder(tmp_path, {"train": ["known"], "test": ["known-late"], "reason": "by date"},
                           broken_test=True)
    assert [c.name for c in calibration.load_cases(folder, quiet=True)] == ["known"]  # the broken file is unread
    assert_refused(cli("validate", str(folder), "--quiet", "--out", str(tmp_path / "out")), "known-late.yaml")


def test_validate_scores_the_test_cases_apart(tmp_path):
    folder = _split_folder(tmp_path, {"train": ["known"], "test": ["known-late"], "reason": "by date"})
    done = cli("validate", str(folder), "--workers", "1", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "On the test cases of" in done.stdout and "Forecasting tournament: 1 case," in done.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["test"]["cases"] == ["known-late"] and summary["test"]["reason"] == "by date"
    assert summary["test"]["sizes"]["cases"] == 1 and summary["sizes"]["cases"] == 2
    test = pd.read_csv(tmp_path / "out" / "tournament-test.csv").set_index("predictor")
    # known-late alone: the model's runs agree on (40, 30) against observed (40, 38): CRPS (0 + 8) / 2
    assert test.loc["model", "crps"] == pytest.approx(4.0, abs=1e-4)


@pytest.mark.parametrize(("split", "named"), [
    ({"train": ["known"], "test": []}, "known-late is in no list"),
    ({"train": ["known", "known-late"], "test": ["known"]}, "known is listed twice"),
    ({"train": ["known", "known-late", "other"], "test": []}, "other has no file"),
    ({"train": ["known"]}, "not a split"),
])
def test_a_bad_split_is_refused(tmp_path, split, named):
    folder = _split_folder(tmp_path, split)
    for command in ("validate", "calibrate"):
        assert_refused(cli(command, str(folder), "--quiet", "--out", str(tmp_path / "out")), "split.yaml", named)


def test_option_scores_are_per_case_choice_then_averaged():
    rows = []
    for case, observed in (("c1", "x"), ("c2", "y")):
        for option, p in (("x", 0.75), ("y", 0.25)):  # the same forecast in both cases
            rows.append({"case": case, "predictor": "f", "kind": "option", "item": f"sg={option}", "p": p,
                         "happened": option == observed, "brier": (p - (option == observed)) ** 2,
                         "log_score": -np.log(p)})
    board = tournament.table(pd.DataFrame(), pd.DataFrame(rows)).set_index("predictor")
    # c1: (0.75 - 1)^2 + 0.25^2 = 0.125; c2: 0.75^2 + (0.25 - 1)^2 = 1.125; mean 0.625 (never above 2)
    assert board.loc["f", "brier_option"] == pytest.approx(0.625)
    assert board.loc["f", "log_option"] == pytest.approx((-np.log(0.75) - np.log(0.25)) / 2)
