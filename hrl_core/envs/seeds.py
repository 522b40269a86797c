"""Environment seeds: which episodes each use of a run plays, named once so that the uses never share episodes.

A run with seed s trains on environment seeds s * n_envs + i (`train.env_seeds`); every other use adds its offset
here to s. Changing a value changes which episodes stored evaluations and analyses were computed on, so they would
no longer be read back (each records its seed)."""

CURVE_OFFSET = 10_000  # the evaluation curve logged during training (`eval/return`, train.evaluation_return)
EVALUATION_OFFSET = 20_000  # final evaluations (`hrl eval`, the grids') and the composed task's episodes (06)
HORIZON_OFFSET = 30_000  # the horizon measure's perturbed rollouts (02)
GATE_OFFSET = 40_000  # the "gate" evaluation: a claim's skill-learned check, on episodes no measure plays
