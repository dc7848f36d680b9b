"""Progressive training of the automodulator: schedule, steps, EMA, checkpoints and resume, data-parallel runs."""
