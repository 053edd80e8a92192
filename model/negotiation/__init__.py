"""Layer 2, the negotiation: the randomness contract (`seeds`), scenario -> arrays (`params`), the
round's rules over arrays (`rules`), the Mesa agents and model (`agents`, `model`), the ensemble
engine (`ensemble`), the results table both engines build (`results`), and the engine choice
(`engines`)."""
