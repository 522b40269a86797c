"""Shared fixtures: a very small configuration so agent tests compile and run in seconds."""

from hrl_core import batches

SMALL = dict(deter=32, hidden=32, stoch=4, classes=4, cnn_channels=(4, 8, 8, 8), mlp_units=32, batch_size=2,
             batch_length=8, horizon=4, manager_period=2, train_ratio=16.0, replay_capacity=4000, goal_codes=4,
             goal_classes=4)


def random_batch(agent, cfg, seed=0):
    return batches.random_batch(agent.obs_space, agent.act_space, cfg, seed)
