"""hrl-workspace core: pixel world-model agents (flat DreamerV3 and hierarchical Director) and their study tools."""

__version__ = "0.1.0"
