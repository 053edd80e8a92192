"""Layer 4, experiments: they compose runs and outputs. Chunks and executors (`batch`, `cluster`),
the output folder (`store`), the main job (`runner`), sweeps (`sweep`, `persuasion`), validation
of a folder of historical cases (`history`) and calibration (`calibration`)."""
