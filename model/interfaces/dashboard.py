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


def _priced() -> tuple[str, str, float]:
    """The baseline's first member with a price on offer: (member, issue, amount)."""
    for code, member in BASE.members.items():
        for issue, amount in member.price.items():
            return code, issue, amount
    return next(iter(BASE.members)), next(iter(BASE.issues)), 0.0


PRICED = _priced()


class DashboardModel(NegotiationModel):
    """The baseline negotiation with the dashboard's controls applied as scenario overrides."""

    def __init__(self, rounds: int = BASE.protocol.rounds, summit_sessions: int = BASE.protocol.summit_sessions,
                 acceptance_noise: float = BASE.protocol.acceptance_noise,
                 failure_cost: float = BASE.member_defaults.failure_cost,
                 preparatory_cost_share: float = BASE.protocol.preparatory_cost_share,
                 price_member: str = PRICED[0], price: float = PRICED[2], exemptions: bool = False,
                 exemption_cost: float = 10.0,
                 shift_who: str = NOBODY, seed: str = str(BASE.run.seed), replication: int = 0, **shifts: float):
        overrides = [f"protocol.rounds={rounds}", f"protocol.summit_sessions={summit_sessions}",
                     f"protocol.acceptance_noise={acceptance_noise}", f"member_defaults.failure_cost={failure_cost}",
                     f"protocol.preparatory_cost_share={preparatory_cost_share}",
                     f"members.{price_member}.price.{PRICED[1]}={price}"]
        if exemptions:  # otherwise as the scenario has them (the baseline: none)
            overrides += [f"issues.{issue}.carve_out_cost={exemption_cost}" for issue in BASE.level_issues]
        if shift_who != NOBODY:
            kind, who = shift_who.split(" ", 1)
            collection = "blocs" if kind == "bloc" else "members"
            overrides += [f"{collection}.{who}.shift.{issue}={shifts.get(f'shift_{issue}', 0.0)}"
                          for issue in BASE.level_issues]
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
        "rounds": Slider("rounds (the last: the summit)", BASE.protocol.rounds, 1, 20, 1),
        "summit_sessions": Slider("drafts at the summit", BASE.protocol.summit_sessions, 1, 10, 1),
        "acceptance_noise": Slider("acceptance noise (points)", BASE.protocol.acceptance_noise,
                                   0.0, 30.0, 0.5),
        "failure_cost": Slider("cost of failure (points)",
                               BASE.member_defaults.failure_cost, 0.0, 80.0, 1.0),
        "preparatory_cost_share": Slider("share felt before summit",
                                         BASE.protocol.preparatory_cost_share, 0.0, 1.0, 0.05),
        "price_member": {"type": "Select", "value": PRICED[0], "values": list(BASE.members),
                         "label": f"price for a veto on {PRICED[1]}: who"},
        "price": Slider("price for that veto (points)", PRICED[2], 0.0, 40.0, 1.0),
        "exemptions": {"type": "Checkbox", "value": False, "label": "exemptions at the summit"},
        "exemption_cost": Slider("exemption cost (points)", 10.0, 0.0, 40.0, 1.0),
        "shift_who": {"type": "Select", "value": NOBODY, "values": _shift_targets(),
                      "label": "shift the positions of"},
    }
    params |= {f"shift_{issue}": Slider(f"shift on {issue} (points)", 0.0, -50.0, 50.0, 1.0)
               for issue in BASE.level_issues}
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
    """Where the talks stand; the declaration's text once agreed; contracts and exemptions."""
    update_counter.get()  # re-render after every Step, Play tick and Reset
    out, scenario, p = model.outcome, model.scenario_config, model.params
    stage = "the summit" if model.summit else "a preparatory round"
    heading = f"Round {model.round} of {p.rounds} ({stage})" if model.round else f"Before round 1 of {p.rounds}"
    quo = "; ".join([f"{scenario.issues[i].label}: {q:g}" for i, q in zip(p.issues, p.status_quo)]
                    + [f"{scenario.issues[c].label}: {scenario.issues[c].status_quo}" for c in p.choices])
    if model.running:
        _text(heading, [f"Negotiating. Objected to the last draft: {' '.join(model.objectors) or 'nobody yet'}.",
                        f"Status quo (the text that stands if an issue is not agreed): {quo}."])
    else:
        headline = {"consensus": f"Consensus in round {out.agreement_round}. Declaration:",
                    "partial": "Deadline passed: contested issues dropped, the rest agreed. Declaration:",
                    "none": "Deadline passed without a declaration: the status quo stands."}[out.kind]
        stands = {**{name: f"{level:.1f}" for name, level in out.levels.items()}, **out.options}
        items = [f"{scenario.issues[name].label}: {value}, {scenario.issues[name].phrase(out.levels.get(name, value))}"
                 + ("" if out.agreed[name] else " (not agreed: the status quo stands)")
                 for name, value in stands.items()]
        items += [f"{scenario.members[code].name}'s minimum " + ("met" if met else "not met")
                  for code, met in out.satisfied.items()]
        _text(heading, [headline], items)
    prices = [f"{code} on {issue}: {amount:g}" for code, m in scenario.members.items()
              for issue, amount in m.price.items() if amount > 0]
    solara.v.Html(tag="p", children=[
        f"Prices on offer: {', '.join(prices) or 'none'}. Vetoes sold (member:issue@round=level/payment): "
        f"{' '.join(map(str, out.side_payments)) or 'none'}; exemptions: {' '.join(map(str, out.carve_outs)) or 'none'}; "
        f"last holdouts: {' '.join(out.holdouts) or 'none'}."])


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
        last = summary["agreement_round"]["last_round"]
        levels = "; ".join(f"{name} {issue['mean']:.1f} (agreed in {issue['agreed']['p']:.0%})"
                           for name, issue in summary["issues"].items() if issue.get("kind") != "choice")
        options = [f"{issue['label']}: " + ", ".join(f"{row['option']} {row['p']:.0%}" for row in issue["options"])
                   for issue in summary["issues"].values() if issue.get("kind") == "choice"]
        satisfied = [f"{row['name']}'s minimum met in {fmt_share(row)} of runs" for row in summary["satisfied"].values()]
        _text("Batch estimate", [f"P(consensus) = {fmt_share(summary['consensus'])} (95 % Wilson interval), "
                                 f"seed {summary['seed']}; agreed at the summit: "
                                 f"{'n/a' if last['p'] is None else format(last['p'], '.1%')} of agreements.",
                                 f"Mean text that stands: {levels}.", *options, *satisfied, "Last holdouts, share of runs:"],
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
