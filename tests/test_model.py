"""The Mesa model as a Mesa user meets it, and the randomness contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from model.experiments.batch import chunks, execute
from model.experiments.job import Execution
from model.negotiation.agents import Chair, Ally
from model.negotiation.engines import run_chunk
from model.negotiation.model import NegotiationModel
from model.negotiation.params import build_params
from model.negotiation.results import to_frame
from model.negotiation.seeds import Purpose, root_key, uniforms
from model.scenario.files import load_scenario


def test_bare_model_is_the_vilnius_baseline_and_runs():
    model = NegotiationModel()
    assert len(model.agents_by_type[Ally]) == 33 and len(model.agents_by_type[Chair]) == 1  # with Sweden, Ukraine
    voting = model.agents_by_type[Ally].select(lambda a: a.voting)
    assert len(voting) == 31
    assert model.seed == load_scenario().run.seed
    model.run_for(20)  # more than the rounds there are: the model stops itself at the summit
    out = model.outcome
    assert not model.running and out.kind == "consensus"  # replication 0 of the baseline seed agrees (README)
    assert out.rounds_played == out.agreement_round == model.round == model.params.rounds  # at the summit
    assert model.steps == model.round  # Mesa's own step counter does not count rounds never played
    frame = model.datacollector.get_model_vars_dataframe()
    assert len(frame) == out.rounds_played + 1  # round 0 plus each round played
    assert frame["consensus"].tolist() == [False] * out.rounds_played + [True]
    row = to_frame(run_chunk(model.scenario_config, model.seed, 0, 1, engine="ensemble")).iloc[0]  # the other engine
    assert (row["outcome"], row["agreement_round"], row["summit_session"], list(row["holdouts"])) == (
        out.kind, out.agreement_round, out.summit_session, out.holdouts)


class Obliging(Ally):
    """A member with its own strategy: it accepts every draft."""

    def vote(self, draft, options, exempted, noise):
        super().vote(draft, options, exempted, noise)
        self.accepted = True


def test_a_member_can_play_its_own_strategy_on_the_mesa_engine_only(tiny):
    scenario = load_scenario(tiny_path(), ["protocol.acceptance_noise=12", "run.replications=60"])
    plain = to_frame(run_chunk(scenario, 3, 0, 60, engine="mesa"))
    custom = to_frame(run_chunk(scenario, 3, 0, 60, engine="mesa", agent_classes={"AAA": Obliging}))
    assert plain["holdouts"].map(lambda h: "AAA" in h).any()  # the check has teeth
    assert not custom["holdouts"].map(lambda h: "AAA" in h).any()
    assert custom["consensus"].sum() >= plain["consensus"].sum()
    model = NegotiationModel(scenario, rng=3, agent_classes={"AAA": Obliging})
    assert [type(a).__name__ for a in model.allies] == ["Obliging", "Ally", "Ally"]  # still in file order
    with pytest.raises(ValueError, match="ensemble engine .* has no agents"):
        run_chunk(scenario, 3, 0, 5, engine="ensemble", agent_classes={"AAA": Obliging})
    with pytest.raises(ValueError, match="unknown member 'ZZZ'"):
        NegotiationModel(scenario, agent_classes={"ZZZ": Obliging})
    with pytest.raises(TypeError, match="subclass of"):
        NegotiationModel(scenario, agent_classes={"AAA": object})


def tiny_path():
    from .conftest import TINY

    return TINY


@pytest.mark.parametrize("engine", ["mesa", "ensemble"])
def test_same_seed_same_table_whatever_the_chunks_and_workers(tiny, engine):
    whole = to_frame(run_chunk(tiny, 21, 0, 24, engine=engine))
    pd.testing.assert_frame_equal(whole, to_frame(run_chunk(tiny, 21, 0, 24, engine=engine)))
    for workers in (1, 2):  # two workers: a real spawn-context process pool
        todo = chunks(24, 5)
        assert todo == [(0, 5), (5, 5), (10, 5), (15, 5), (20, 4)]
        done = sorted(execute(tiny, 21, todo, Execution(workers=workers, engine=engine)), key=lambda item: item[0])
        assert [first for first, _ in done] == [0, 5, 10, 15, 20]
        pieces = to_frame(pa.concat_tables(table for _, table in done))
        pd.testing.assert_frame_equal(whole, pieces)
    other_seed = to_frame(run_chunk(tiny, 22, 0, 24, engine=engine))
    assert not whole["level_ukraine"].equals(other_seed["level_ukraine"])


def test_the_default_engine_is_the_ensemble():
    import inspect

    from model.negotiation.engines import DEFAULT_ENGINE

    assert DEFAULT_ENGINE == "ensemble" and Execution().engine == "ensemble"
    assert inspect.signature(run_chunk).parameters["engine"].default == "ensemble"
    with pytest.raises(ValueError, match="unknown engine 'fast'; known: ensemble, mesa"):
        run_chunk(load_scenario(), 1, 0, 1, engine="fast")


def test_draws_for_a_block_of_replications_equal_draws_one_at_a_time():
    key = root_key(99)
    block = uniforms(key, Purpose.ACCEPT, 3, 10, 7, 5)
    single = np.vstack([uniforms(key, Purpose.ACCEPT, 3, r, 1, 5) for r in range(10, 17)])
    assert np.array_equal(block, single)
    assert not np.array_equal(uniforms(key, Purpose.ACCEPT, 4, 10, 1, 5), block[:1])  # votes differ
    assert not np.array_equal(uniforms(key, Purpose.IDEAL, 3, 10, 1, 5), block[:1])  # purposes differ


def test_ideal_draws_respect_their_distributions(tiny):
    p = build_params(tiny)
    draws = p.draw_ideals(root_key(1), 0, 20_000)
    aaa, bbb, ccc = draws[:, 0, 0], draws[:, 1, 0], draws[:, 2, 0]
    assert aaa.min() >= 20 and aaa.max() <= 40 and aaa.mean() == pytest.approx(30, abs=0.3)  # uniform
    assert bbb.min() >= 50 and bbb.max() <= 75
    assert bbb.mean() == pytest.approx((50 + 4 * 60 + 75) / 6, abs=0.2)  # PERT mean
    assert ccc.min() >= 60 and ccc.max() <= 100  # truncated normal
    assert (draws[:, :, 1] == p.nominal_ideal[:, 1]).all()  # fixed spending ideals
    assert np.array_equal(p.draw_ideals(root_key(1), 100, 5), draws[100:105])


def test_bloc_and_member_shifts_move_ideals_and_stay_on_the_scale(tiny):
    from .conftest import TINY

    shifted = build_params(load_scenario(TINY, ["blocs.B.shift.ukraine=30", "members.AAA.shift.spending=-5"]))
    plain = build_params(tiny)
    assert shifted.nominal_ideal[2, 0] == 100.0  # CCC: 80 + 30, clipped
    assert shifted.nominal_ideal[0, 1] == plain.nominal_ideal[0, 1] - 5  # AAA's own shift
    assert shifted.nominal_ideal[1].tolist() == plain.nominal_ideal[1].tolist()  # BBB untouched


def test_mesa_batch_run_drives_the_model():
    import mesa

    from .conftest import TINY

    rows = mesa.batch_run(NegotiationModel, parameters={"scenario": str(TINY)}, rng=[1, 2],
                          max_steps=10, number_processes=1, display_progress=False)
    assert {row["RunId"] for row in rows} == {0, 1}
    assert {"round", "consensus", "position_ukraine"} <= set(rows[0])  # model and member reporters
    direct = NegotiationModel(str(TINY), rng=2)
    direct.run_for(10)
    assert rows[-1]["consensus"] == direct.outcome.consensus and rows[-1]["round"] == direct.round


def test_tabulated_inversion_follows_the_exact_distributions(tiny):
    from scipy import stats

    p = build_params(tiny)
    draws = p.draw_ideals(root_key(2), 0, 40_000)
    pert = stats.beta(1 + 4 * (60 - 50) / 25, 1 + 4 * (75 - 60) / 25, loc=50, scale=25)  # BBB
    trunc = stats.truncnorm((60 - 80) / 10, (100 - 80) / 10, loc=80, scale=10)  # CCC
    for sample, exact in ((draws[:, 1, 0], pert), (draws[:, 2, 0], trunc)):
        assert stats.kstest(sample, exact.cdf).pvalue > 0.001
