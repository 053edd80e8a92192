"""The dashboard's model and panels; `app.py` puts them on a Mesa SolaraViz page.

Every control becomes a `--set` override of the scenario (the CLI's own, tested path), and the
batch estimate runs the ensemble engine through `engines.run_chunk` and `report.summarize`, so the
page computes nothing the command line does not.
"""

from __future__ import annotations

import solara
from mesa.visualization import Slider, SolaraViz
from mesa.visualization.utils import update_counter

from model.negotiation.engines import run_chunk
from model.negotiation.model import NegotiationModel
from model.negotiation.results import to_frame
from model.outputs import plots, report
from model.outputs.stats import fmt_share
from model.scenario.files import BASELINE, load_scenario

NOBODY = "(nobody)"
BASE = load_scenario(BASELINE)


def _shift_targets() -> list[str]:
    return [NOBODY, *(f"bloc {b}" for b in BASE.blocs), *(f"member {m}" for m in BASE.members)]


class DashboardModel(NegotiationModel):
    """The baseline negotiation with the dashboard's controls applied as scenario overrides."""

    def __init__(self, rounds: int = BASE.protocol.rounds, concession: float = BASE.member_defaults.concession,
                 acceptance_noise: float = BASE.protocol.acceptance_noise, linkage_member: str = "TUR",
                 linkage: float = BASE.behaviour("TUR").linkage, shift_who: str = NOBODY,
                 seed: str = str(BASE.run.seed), replication: int = 0, **shifts: float):
        overrides = [f"protocol.rounds={rounds}", f"member_defaults.concession={concession}",
                     f"protocol.acceptance_noise={acceptance_noise}",
                     f"members.{linkage_member}.linkage={linkage}"]
        if shift_who != NOBODY:
            kind, who = shift_who.split(" ", 1)
            collection = "blocs" if kind == "bloc" else "members"
            overrides += [f"{collection}.{who}.shift.{issue}={shifts.get(f'shift_{issue}', 0.0)}"
                          for issue in BASE.issues]
        self.overrides = overrides
        super().__init__(load_scenario(BASELINE, overrides), rng=_seed(seed), replication=replication)


def _seed(text: str) -> int:
    """The typed seed, or the baseline's when it is not a whole number from 0 to 2**63-1."""
    try:
        value = int(str(text).strip())
    except ValueError:
        return BASE.run.seed
    return value if 0 <= value < 2**63 else BASE.run.seed


def model_params() -> dict:
    """The sidebar: what analysts change most."""
    params = {
        "rounds": Slider("rounds to the deadline", BASE.protocol.rounds, 1, 20, 1),
        "concession": Slider("concession (beta: <1 late, >1 early)", BASE.member_defaults.concession, 0.2, 5.0, 0.1),
        "acceptance_noise": Slider("acceptance noise (logistic scale)", BASE.protocol.acceptance_noise, 0.0, 10.0, 0.5),
        "linkage_member": {"type": "Select", "value": "TUR", "values": list(BASE.members),
                           "label": "who may sell a veto"},
        "linkage": Slider("linkage: P(sells its veto) per round", BASE.behaviour("TUR").linkage, 0.0, 1.0, 0.05),
        "shift_who": {"type": "Select", "value": NOBODY, "values": _shift_targets(),
                      "label": "shift the positions of"},
    }
    params |= {f"shift_{issue}": Slider(f"shift on {issue} (points)", 0.0, -50.0, 50.0, 1.0)
               for issue in BASE.issues}
    params |= {"seed": {"type": "InputText", "value": str(BASE.run.seed), "label": "seed"},
               "replication": Slider("replication", 0, 0, 999, 1)}
    return params


def _text(heading: str, paragraphs: list[str], items: list[str] = ()) -> None:
    """Plain HTML text (solara's Markdown would fetch KaTeX, which offline machines cannot)."""
    solara.v.Html(tag="h3", children=[heading])
    for paragraph in paragraphs:
        solara.v.Html(tag="p", children=[paragraph])
    if items:
        solara.v.Html(tag="ul", children=[solara.v.Html(tag="li", children=[item]) for item in items])


@solara.component
def StatusPanel(model: DashboardModel):
    """Where the talks stand; the declaration's text once agreed."""
    update_counter.get()  # re-render after every Step, Play tick and Reset
    out, scenario = model.outcome, model.scenario_config
    heading = f"Round {model.round} of {model.params.rounds}"
    if model.running:
        _text(heading, [f"Negotiating. Objected to the last draft: {' '.join(model.objectors) or 'nobody yet'}."])
        return
    headline = {"consensus": f"Consensus in round {out.agreement_round}. Declaration:",
                "partial": "Deadline passed: contested issues dropped, the rest agreed. Declaration:",
                "none": "Deadline passed without a declaration."}[out.kind]
    items = [f"{scenario.issues[name].label}: " + ("dropped" if level != level else
                                                   f"{level:.1f}, {scenario.issues[name].phrase(level)}")
             for name, level in out.levels.items()] if out.kind != "none" else []
    _text(heading, [headline], items)
    solara.v.Html(tag="p", children=[f"Last holdouts: {' '.join(out.holdouts) or 'none'}; "
                                     f"side payments: {' '.join(map(str, out.side_payments)) or 'none'}."])


@solara.component
def TrajectoryPanel(model: DashboardModel):
    update_counter.get()
    solara.FigureMatplotlib(plots.plot_trajectories(model), format="png", dpi=90)


@solara.component
def VotePanel(model: DashboardModel):
    update_counter.get()
    solara.FigureMatplotlib(plots.plot_acceptance(model), format="png", dpi=90)


@solara.component
def BatchEstimatePanel(model: DashboardModel):
    """P(consensus) at the current settings over N replications (ensemble engine)."""
    runs, set_runs = solara.use_state(2000)
    summary, set_summary = solara.use_state(None)

    def estimate():
        scenario = model.scenario_config
        frame = to_frame(run_chunk(scenario, model.seed, 0, runs, engine="ensemble"))
        set_summary(report.summarize(frame, scenario, model.seed))

    solara.SliderInt("replications", value=runs, on_value=set_runs, min=100, max=20000, step=100)
    solara.Button(f"Run {runs} replications", on_click=estimate, color="primary")
    if summary:
        _text("Batch estimate", [f"P(consensus) = {fmt_share(summary['consensus'])} (95 % Wilson interval), "
                                 f"seed {summary['seed']}. Last holdouts, share of runs:"],
              [f"{row['member']} {row['name']}: {fmt_share(row)}" for row in summary["holdouts"][:8]])
    else:
        _text("Batch estimate", ["P(consensus) at the current settings, with the fast ensemble engine."])


@solara.component
def Page(model: solara.Reactive | None = None):
    """Mesa's SolaraViz gives the sidebar (Reset, Play, Step, the model's parameters); the panels
    sit below it at full width, where the figures stay legible. Pass a reactive model to watch it
    from outside, as the tests do."""
    own = solara.use_reactive(DashboardModel())
    model = model if model is not None else own
    SolaraViz(model, components=[], model_params=model_params(), name="Vilnius consensus simulator")
    with solara.Column(style={"padding": "12px"}):
        with solara.Columns([1, 1]):
            StatusPanel(model.value)
            BatchEstimatePanel(model.value)
        TrajectoryPanel(model.value)
        VotePanel(model.value)
