"""Agent steps/s with 64x64 pixels for each task, one process and batched over worker processes.

    python benchmarks/env_throughput.py [--seconds 10]      (same as: hrl bench envs)
"""

import sys

from hrl_core.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "envs", *sys.argv[1:]]))
