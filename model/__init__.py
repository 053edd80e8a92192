"""The Vilnius consensus simulator: an agent-based model (Mesa) of NATO summit negotiations.

The subpackages are layers; each imports only from the layers before it (tests/test_layers.py):

    scenario     the scenario format and inputs: schema, YAML files, `--set` paths, sweep designs
    negotiation  the rules over arrays, the Mesa agents and model, the ensemble engine, randomness
    outputs      statistics, summaries, validation scores and figures: functions of result tables
    experiments  batches, executors, the result store, sweeps, history validation, calibration
    interfaces   the command line and the dashboard
"""
