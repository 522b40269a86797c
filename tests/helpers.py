"""Shared fixtures: a very small configuration so agent tests compile and run in seconds."""

import numpy as np

SMALL = dict(deter=32, hidden=32, stoch=4, classes=4, cnn_channels=(4, 8, 8, 8), mlp_units=32, batch_size=2,
             batch_length=8, horizon=4, manager_period=2, train_ratio=16.0, replay_capacity=4000, goal_codes=4,
             goal_classes=4)


def random_batch(agent, cfg, seed=0):
    from hrl_core.train import replay_spaces

    rng = np.random.default_rng(seed)
    batch = {}
    for k, (shape, dtype) in replay_spaces(agent.obs_space, agent.act_space).items():
        if k == "is_last":
            continue
        full = (cfg.batch_size, cfg.batch_length, *shape)
        if dtype == np.uint8:
            batch[k] = rng.integers(0, 255, full).astype(np.uint8)
        elif dtype == bool:
            batch[k] = np.zeros(full, bool)
        else:
            batch[k] = rng.uniform(-1, 1, full).astype(np.float32)
    return batch
