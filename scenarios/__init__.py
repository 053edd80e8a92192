"""The shipped scenarios. This folder is installed as the package data `model.scenarios`
(pyproject.toml), so `model.scenario.files.packaged(name)` finds a file here with or without a checkout."""
