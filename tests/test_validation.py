"""Validation against history: baselines, the comparison and its table, the historical scenarios,
observed-block errors, the folder command, and calibration."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from model.experiments import calibration
from model.experiments.history import scenario_files
from model.negotiation import rules
from model.negotiation.engines import run_chunk
from model.negotiation.params import build_params
from model.negotiation.results import to_frame
from model.outputs import validation
from model.outputs.report import render, summarize
from model.outputs.stats import fmt_share, proportion
from model.outputs.validation import EX_ANTE, OUTCOME_KNOWN, caveat
from model.scenario.files import load_scenario, validate
from model.scenario.schema import ScenarioError

from .conftest import DATA, REPO, TINY, cli, make_scenario
from .test_cli import assert_refused, wilson_by_hand

KNOWN = DATA / "known"
HISTORY = scenario_files(REPO / "scenarios" / "history")  # the cases, not split.yaml


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
    assert base["status_quo"]["x"] == 50.0  # make_scenario's status quo


# ---------------------------------------------------------------- the comparison, on a known answer
@pytest.fixture(scope="module")
def known_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("known") / "out"
    done = cli("validate", str(KNOWN), "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done


def test_validation_table_matches_the_hand_computed_answer(known_folder):
    out, done = known_folder
    table = pd.read_parquet(out / "validation.parquet")
    pd.testing.assert_frame_equal(table, pd.read_csv(out / "validation.csv"), check_dtype=False)
    row = table[(table["scenario"] == "known")].set_index("issue")
    expected = {  # see the header of tests/data/known/known.yaml
        # every run at the level: CRPS = |error|, interval score = 0 width + 20 x the miss (alpha 0.1)
        "a": {"observed": 40, "predicted": 40, "p05": 40, "p95": 40, "abs_error": 0, "crps": 0, "interval_score": 0,
              "compromise": 32 / 0.7,
              "compromise_abs_error": 32 / 0.7 - 40, "weighted_median": 20, "weighted_median_abs_error": 20,
              "plain_mean": 50, "plain_mean_abs_error": 10, "status_quo": 30, "status_quo_abs_error": 10},
        "b": {"observed": 38, "predicted": 30, "p05": 30, "p95": 30, "abs_error": 8, "crps": 8, "interval_score": 160,
              "compromise": 13 / 0.3,
              "compromise_abs_error": 13 / 0.3 - 38, "weighted_median": 60, "weighted_median_abs_error": 22,
              "plain_mean": 42.5, "plain_mean_abs_error": 4.5, "status_quo": 20, "status_quo_abs_error": 18},
    }
    for issue, values in expected.items():
        for key, value in values.items():
            assert row.loc[issue, key] == pytest.approx(value, abs=1e-4), (issue, key)  # the chair's solver: 1e-5
    assert row.loc["a", "inside_90"] and not row.loc["b", "inside_90"]  # a point interval at 30 does not hold 38
    assert validation.overall_mae(table) == pytest.approx(
        {"model": 4.0, "compromise": (32 / 0.7 - 40 + 13 / 0.3 - 38) / 2, "weighted_median": 21.0,
         "plain_mean": 7.25, "status_quo": 14.0}, abs=1e-5)
    cases = pd.read_csv(out / "validation-cases.csv").set_index("scenario")
    assert cases.loc["known", "p_consensus"] == 1.0 and cases.loc["known", "median_round"] == 1
    assert cases.loc["known", "brier_consensus"] == 0.0  # 20 of 20 runs agree, and the summit did
    assert cases.loc["known", "log_score_consensus"] == pytest.approx(-np.log(20.5 / 21))
    assert cases.loc["known", "p_last_round"] == 0.0 and cases.loc["known", "holdout_recall"] == 0.0
    assert cases.loc["known-late", "median_round"] == 4 and cases.loc["known-late", "p_last_round"] == 1.0
    summary = json.loads((out / "known" / "summary.json").read_text())
    v = summary["validation"]
    assert v["timing"]["abs_error"] == 0.0  # observed not late, and the model agrees in round 1 of 4
    late = json.loads((out / "known-late" / "summary.json").read_text())["validation"]
    assert late["timing"]["abs_error"] == 0.0  # X and V object until the summit, where all agree
    assert [h["member"] for h in late["holdouts"]["top_predicted"]] == ["X", "V"]
    assert v["consensus"] == {"observed": True, "predicted": 1.0, "ci95": v["consensus"]["ci95"], "matched": True,
                              "abs_error": 0.0, "brier": 0.0, "log_score": pytest.approx(-np.log(20.5 / 21))}
    assert v["holdouts"]["observed"] == [{"member": "Z", "name": "Zland", "p": 0.0}]
    assert v["caveat"] == OUTCOME_KNOWN
    for name in ("validation.png", "validation.svg"):
        assert (out / "figures" / name).stat().st_size > 0
    assert "Mean absolute error over 4 observed levels (2 summits)" in done.stdout
    assert "weighted median" in done.stdout and "coded knowing the real outcome" in done.stdout
    assert "The model beats the best baseline here (compromise (salience x capability weighted mean), 5.5)" \
        in done.stdout


def test_validate_writes_the_tournament(known_folder):
    out, done = known_folder
    board = pd.read_parquet(out / "tournament.parquet")
    pd.testing.assert_frame_equal(board, pd.read_csv(out / "tournament.csv"), check_dtype=False)
    assert board["predictor"].tolist()[:2] == ["model", "status_quo"] and len(board) == 10
    row = board.set_index("predictor").loc["model"]
    # the model's 20 runs agree on (40, 30) in round 1 in both cases: errors 0 and 8 per case
    assert row["mae"] == pytest.approx(4.0, abs=1e-4) and row["crps"] == pytest.approx(4.0, abs=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sizes"] == {"cases": 2, "levels": 4, "holdout_rows": 8}
    assert summary["best"]["mae"] == ["model"]
    assert summary["verdict"].startswith("Lowest mean CRPS of the levels: the model")
    assert "Forecasting tournament: 2 cases, 4 observed levels" in done.stdout
    assert "MAE" in done.stdout and "*" in done.stdout
    for stem in ("tournament-levels", "tournament-skill", "tournament-pit"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 0


def test_compare_reports_the_text_that_stands_its_interval_and_holdouts():
    s = load_scenario(TINY, ["protocol.acceptance_noise=12"])  # observed: 50 on both issues
    df = to_frame(run_chunk(s, 7, 0, 300, engine="ensemble"))
    summary = summarize(df, s, 7)
    v = summary["validation"]
    for name, row in v["issues"].items():  # against the runs themselves, not the summary's issue section
        stands = df[f"level_{name}"]  # the agreed level, or the status quo where the issue was not agreed
        assert row["observed"] == 50.0 and row["predicted"] == pytest.approx(stands.mean(), abs=1e-12)
        assert row["abs_error"] == pytest.approx(abs(stands.mean() - 50), abs=1e-12)
        assert row["inside_90"] == (stands.quantile(0.05) <= 50 <= stands.quantile(0.95))
        assert row["agreed"] == pytest.approx(df[f"agreed_{name}"].mean(), abs=1e-12)
    lost = ~df["agreed_ukraine"].astype(bool)
    assert lost.any() and (df.loc[lost, "level_ukraine"] == s.issues["ukraine"].status_quo).all()
    far = summarize(df, load_scenario(TINY, ["protocol.acceptance_noise=12", "observed.levels.ukraine=1"]), 7)
    far = far["validation"]["issues"]["ukraine"]
    assert far["inside_90"] is False and df["level_ukraine"].quantile(0.05) > 1  # the check has teeth
    counts = {code: sum(code in list(h) for h in df["holdouts"]) for code in s.members}
    top = max(counts, key=counts.get)
    assert v["holdouts"]["top_predicted"][0] == {"member": top, "p": counts[top] / 300}
    assert "Validation against the observed outcome" in render(summary)


@pytest.mark.parametrize("k, n, published", [  # Newcombe (1998), Stat Med 17:857, table I, method 3
    (81, 263, (0.2553, 0.3662)), (15, 148, (0.0624, 0.1605)), (0, 20, (0.0, 0.1611)), (1, 29, (0.0061, 0.1718)),
])
def test_shares_carry_the_published_wilson_interval(k, n, published):
    share = proportion(k, n)
    assert (share["k"], share["n"], share["p"], share["method"]) == (k, n, k / n, "wilson")
    assert share["ci95"] == pytest.approx(published, abs=5e-5)
    assert share["ci95"] == pytest.approx(wilson_by_hand(k, n), abs=1e-12)


def test_share_edges_and_the_printed_form():
    for k, n in ((0, 10), (10, 10), (1, 1), (3, 10)):
        assert proportion(k, n)["ci95"] == pytest.approx(wilson_by_hand(k, n), abs=1e-12), (k, n)
    assert proportion(10, 10)["ci95"][1] == 1.0 and proportion(0, 10)["ci95"][0] == 0.0
    assert proportion(0, 0) == {"k": 0, "n": 0, "p": None, "ci95": [None, None], "method": "wilson"}
    assert fmt_share(proportion(1748, 2000)) == "0.874 [0.859, 0.888] (1748/2000)"
    assert fmt_share(proportion(0, 0)) == "n/a (0 runs)"


def test_proper_scores_against_hand_computed_cases():
    # CRPS of the two-point ensemble {0, 10} at 2: F is 1/2 on [0, 10), so the integral of
    # (F - 1{x >= 2})^2 is 2 x 1/4 + 8 x 1/4 = 2.5 (= E|X - 2| - E|X - X'| / 2 = 5 - 2.5)
    assert validation.level_scores(2.0, np.array([0.0, 10.0]), (0.5, 9.5)) == pytest.approx(
        {"crps": 2.5, "interval_score": 9.0})  # inside: the interval score is its width
    assert validation.level_scores(12.0, np.array([0.0, 10.0]), (0.5, 9.5))["interval_score"] == pytest.approx(
        9.0 + 20 * 2.5)  # a miss by 2.5 costs 2 / alpha = 20 per point
    assert validation.level_scores(7.0, np.array([7.0] * 5), (7.0, 7.0)) == {"crps": 0.0, "interval_score": 0.0}
    # Brier (p - y)^2 and log score -log p~ of a share of 3 of 4 runs, p~ = (3 + 1/2) / (4 + 1) = 0.7
    assert validation.event_scores(True, {"k": 3, "n": 4, "p": 0.75}) == pytest.approx(
        {"brier": 0.0625, "log_score": -np.log(0.7)})
    assert validation.event_scores(False, {"k": 3, "n": 4, "p": 0.75}) == pytest.approx(
        {"brier": 0.5625, "log_score": -np.log(0.3)})
    assert validation.event_scores(False, {"k": 0, "n": 0, "p": None}) == {"brier": None, "log_score": None}


def test_holdout_scores():
    assert validation.holdout_scores({"A": 0.5, "B": 0.25, "C": 0.25}, ["A", "C"]) == (0.375, 0.75)
    assert validation.holdout_scores({}, ["A"]) == (0.0, None)
    assert validation.holdout_scores({"A": 1.0}, []) == (None, None)


# ---------------------------------------------------------------- the historical scenarios
@pytest.mark.parametrize("path", HISTORY, ids=lambda p: p.stem)
def test_each_historical_scenario_loads_runs_and_validates(path):
    s = load_scenario(path)
    assert s.observed is not None and set(s.observed.levels) == set(s.level_issues)
    assert set(s.observed.options) == set(s.choice_issues)
    assert s.observed.consensus is not None and s.run.seed is not None
    df = to_frame(run_chunk(s, s.run.seed, 0, 60, engine="ensemble"))
    summary = summarize(df, s, s.run.seed)
    v = summary["validation"]
    row = validation.case_row(s.name, summary)
    assert row["choices"] == " ".join(f"{c}:{s.observed.options[c]}={(df[f'option_{c}'] == s.observed.options[c]).mean():.3f}"
                                      for c in s.choice_issues)
    shown = validation.render_folder(pd.DataFrame(validation.tidy(s.name, v)), {s.name: summary})
    assert all(f"{c}: observed {s.observed.options[c]}" in shown for c in s.choice_issues)
    assert all(f"{m} satisfied (its minimum met)" in shown for m in s.observed.satisfied)
    assert list(v["issues"]) == list(s.level_issues)
    for name, row in v["choices"].items():
        assert row["p_observed"] == pytest.approx((df[f"option_{name}"] == s.observed.options[name]).mean(), abs=1e-12)
    for code, row in v["satisfied"].items():
        assert row["predicted"] == pytest.approx(df[f"satisfied_{code}"].mean(), abs=1e-12)
    base = validation.baselines(s)
    errors = []
    for name, row in v["issues"].items():
        stands = df[f"level_{name}"]
        assert row["predicted"] == pytest.approx(stands.mean(), abs=1e-12), name
        assert row["observed"] == s.observed.levels[name]
        assert row["abs_error"] == pytest.approx(abs(stands.mean() - s.observed.levels[name]), abs=1e-12)
        for b in validation.BASELINES:
            assert row[b] == base[b][name] and row[f"{b}_abs_error"] == pytest.approx(
                abs(base[b][name] - s.observed.levels[name]), abs=1e-12)
        errors.append(row["abs_error"])
    assert v["mae"]["model"] == (pytest.approx(np.mean(errors), abs=1e-12) if errors else None)  # None: choices alone


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


def _bad_folder(tmp_path, kind: str):
    """(folder, what the message must name) for one kind of unusable validation folder."""
    folder = tmp_path / kind
    folder.mkdir()
    raw = _known_raw()
    if kind == "empty":
        return folder, [f"{folder}: no scenario files"]
    if kind == "unobserved":
        del raw["observed"]
        named = [f"{folder / 'case.yaml'}: observed: missing"]
    elif kind == "unknown_issue":
        raw["observed"]["levels"]["zz"] = 3
        named = [f"{folder / 'case.yaml'}: observed.levels.zz: unknown issue"]
    elif kind == "no_levels":
        raw["observed"]["levels"] = {}
        named = [f"{folder / 'case.yaml'}: observed.levels: empty"]
    elif kind == "same_name":
        (folder / "another.yaml").write_text(yaml.safe_dump(raw))
        named = [f"{folder / 'case.yaml'}: name: 'known' is also the name of {folder / 'another.yaml'}"]
    (folder / "case.yaml").write_text(yaml.safe_dump(raw))
    return folder, named


@pytest.mark.parametrize("command", ["validate", "calibrate"])
@pytest.mark.parametrize("kind", ["empty", "unobserved", "unknown_issue", "no_levels", "same_name"])
def test_folder_errors_exit_2_naming_file_and_key(tmp_path, command, kind):
    folder, named = _bad_folder(tmp_path, kind)
    assert_refused(cli(command, str(folder), "--quiet", "--out", str(tmp_path / "out")), *named)
    assert not (tmp_path / "out").exists()


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
    done = cli("validate", str(folder), "--runs", "50", "--workers", "1", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "results" / "theirs"  # the default folder: results/<folder name>/
    table = pd.read_csv(out / "validation.csv")
    assert table["issue"].tolist() == ["ukraine", "spending"] and table["abs_error"].notna().all()
    cases = pd.read_parquet(out / "validation-cases.parquet")
    assert cases["scenario"].tolist() == [raw["name"]]
    assert pd.read_parquet(out / raw["name"] / "replications.parquet").shape[0] == 50


# ---------------------------------------------------------------- calibration
def test_with_behaviour_equals_a_full_rebuild():
    case = calibration.load_cases(KNOWN)[0]
    values = {"member_defaults.anchoring": 0.3, "member_defaults.failure_cost": 25.0,
              "protocol.acceptance_noise": 1.5, "protocol.preparatory_cost_share": 0.2}
    assert set(values) == set(calibration.PARAMETERS)
    s = case.scenario(values)
    fast = calibration.with_behaviour(build_params(case.scenario({})), s)
    full = build_params(s)
    for field in ("anchoring", "failure_cost", "price", "status_quo", "influence", "capability", "ideal_args"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(full, field), err_msg=field)
    assert (fast.acceptance_noise, fast.preparatory_cost_share, fast.rounds) == (1.5, 0.2, 4)
    assert fast.failure_cost.tolist() == [20.0, 25.0, 25.0, 20.0, 25.0]  # X and V keep their own


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
    assert held["compromise_mae"].to_numpy() == pytest.approx([(32 / 0.7 - 40 + 13 / 0.3 - 38) / 2] * 2)
    screen = pd.read_csv(tmp_path / "calibration-screen.csv")
    assert len(screen) == 5 * 2 and (screen["runs"] == 10).all()  # 4 Sobol points + the files' values, 2 cases
    again = calibration.calibrate(cases, tmp_path / "again", runs=10, final_runs=20, points=4, quiet=True)
    assert again["fits"] == report["fits"]  # fixed design seed and scenario seeds: reproducible
    text = calibration.render(report)
    assert "Leave-one-summit-out" in text and "small sample" in text


def test_calibrate_command_runs_the_folder_with_its_flags(tmp_path, monkeypatch):
    """`calibrate FOLDER`: --runs is the screen's size, --seed and --set reach every case, and the
    report goes to results/<folder>-calibration/ (design and replay shrunk to keep this quick)."""
    seen = {}
    real = calibration.calibrate

    def small(cases, out, **flags):
        seen.update(flags, seeds=[c.seed for c in cases], rounds=[c.scenario({}).protocol.rounds for c in cases])
        return real(cases, out, **flags, final_runs=20, points=4)

    monkeypatch.setattr(calibration, "calibrate", small)
    done = cli("calibrate", str(KNOWN), "--runs", "10", "--seed", "3", "--set", "protocol.rounds=5",
               "--workers", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert seen == {"runs": 10, "workers": 1, "quiet": False, "seeds": [3, 3], "rounds": [5, 5]}
    out = tmp_path / "results" / "known-calibration"
    report = json.loads((out / "calibration.json").read_text())
    assert report["screen_runs"] == 10 and report["seeds"] == {"known": 3, "known-late": 3}
    assert sorted(p.name for p in out.iterdir()) == ["calibration-finalists.csv", "calibration-screen.csv",
                                                     "calibration.csv", "calibration.json"]
    assert "Leave-one-summit-out" in done.stdout and f"wrote {Path('results') / 'known-calibration'}/" in done.stdout


def test_calibration_keeps_member_inputs(tmp_path):
    """Calibrated values are defaults: a member's own value (its coded input) is never overridden."""
    raw = copy.deepcopy(_known_raw())
    raw["members"]["Z"]["failure_cost"] = 7.0
    raw["name"] = "zed"
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "z.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(KNOWN / "known.yaml", folder / "known.yaml")
    case = next(c for c in calibration.load_cases(folder) if c.name == "zed")
    s = case.scenario({"member_defaults.failure_cost": 3.0})
    assert s.behaviour("Z").failure_cost == 7.0 and s.behaviour("Y").failure_cost == 3.0


def test_a_case_coded_ex_ante_carries_its_own_caveat():
    """A case with `summit_date` was coded under rules v2 from dated sources: its caveat says so, and
    one without it keeps the warning that it was coded knowing the outcome."""
    assert caveat(load_scenario(REPO / "scenarios" / "baseline.yaml")) == EX_ANTE
    assert caveat(load_scenario(DATA / "known" / "known.yaml")) == OUTCOME_KNOWN
