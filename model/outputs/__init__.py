"""Layer 3, outputs: functions of result tables. Statistics (`stats`), predicted vs observed and
the baselines (`validation`), summaries (`report`), sweep statistics (`sweep_stats`), figures
(`plots`, `sweep_plots`), and the atomic file writers they share (`files`)."""
