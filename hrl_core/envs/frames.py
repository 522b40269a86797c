"""Frames to files: a horizontal PNG strip or an animated GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def frame_strip(frames, max_frames: int = 16) -> np.ndarray:
    frames = np.asarray(frames)
    if len(frames) > max_frames:
        frames = frames[np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    return np.concatenate(list(frames), axis=1)


def save_frames(frames, out: str | Path) -> Path:
    from PIL import Image

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        images = [Image.fromarray(np.asarray(f)) for f in frames]
        images[0].save(out, save_all=True, append_images=images[1:], duration=80, loop=0)
    elif out.suffix.lower() == ".png":
        Image.fromarray(frame_strip(frames)).save(out)
    else:
        raise ValueError(f"--out={str(out)!r} is not valid; allowed suffixes: .png, .gif")
    return out
