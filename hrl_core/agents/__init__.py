"""Agents on the shared world model: the flat DreamerV3 actor-critic and the hierarchical Director (also as
"director+wr", whose worker gets the task reward as well)."""

from hrl_core.config import Config


def make_agent(cfg: Config, obs_space: dict, act_space):
    shape = tuple(obs_space["image"].shape[:2])
    if shape != (cfg.image_size, cfg.image_size):
        raise ValueError(f"image_size={cfg.image_size} is the model's, but the task renders {shape[0]}x{shape[1]} "
                         f"images: render it at size={cfg.image_size} (the run's own task options)")
    if cfg.agent == "dreamer":
        from hrl_core.agents.dreamer import DreamerAgent

        return DreamerAgent(cfg, obs_space, act_space)
    from hrl_core.agents.director import DirectorAgent

    return DirectorAgent(cfg, obs_space, act_space)
