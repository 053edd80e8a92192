"""Dashboard: `solara run app.py` opens the Vilnius negotiation in the browser (Mesa SolaraViz)."""

from model.interfaces.dashboard import Page

__all__ = ["Page"]
