"""Analysis helpers the notebooks call: goal decoding and rollout traces, horizon measures, interval statistics."""
