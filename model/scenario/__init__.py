"""Layer 1, the scenario format: what a scenario file may say (`schema`), how files are read,
merged and overridden (`files`), and the points of a sweep (`design`)."""
