"""The command line: `python run.py scenarios/baseline.yaml` (the main job), or a subcommand
(`python run.py sweep|persuade|replay|validate|calibrate|show ...`). See `python run.py --help`."""

import sys

from model.interfaces.cli import main

if __name__ == "__main__":
    sys.exit(main())
