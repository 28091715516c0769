"""Time-resolved tags: the model's probabilities for each window of a track.

A window is what the network sees at once: one crop of T frames (the run's `crop_frames`,
1,280 frames = 27.3 s at the dataset's 46.875 frames/s). Windows start at 0, `hop` frames apart
(default T/2 = 13.65 s), and lie wholly inside the track; a track shorter than one window gets one
window, padded at its end as training pads it. So a track of `n` >= T frames has
`1 + (n - T) // hop` windows and the last `(n - T) % hop` frames are in no window of their own.
The track-level probabilities (`predict`) are a different average: K regular crops that always
reach the track's last frame.

This module only cuts windows and labels them with times; scoring them is the predictor's
(`Predictor.score_windows`, the export's `windows` endpoint).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import ConfigError

#: Windows scored per model call (bounds memory on a long track).
BATCH = 16


def window_starts(n_frames: int, window_frames: int, hop_frames: int) -> np.ndarray:
    """First frame of each window (see the module docstring for the rule)."""
    if hop_frames < 1:
        raise ConfigError(
            f"hop_s: {hop_frames} frames; must be at least one frame", arguments=("hop_s",)
        )
    return np.arange(0, max(n_frames - window_frames, 0) + 1, hop_frames)


def hop_frames_of(hop_s: float | None, window_frames: int) -> int:
    """The hop in frames for `hop_s` seconds (None: half a window)."""
    if hop_s is None:
        return max(window_frames // 2, 1)
    if not hop_s > 0:
        raise ConfigError(f"hop_s {hop_s}: must be positive", arguments=("hop_s",))
    return max(round(hop_s * MTG_JAMENDO.frames_per_second), 1)


def timeline(predictor, melspec: np.ndarray, hop_s: float | None = None) -> pd.DataFrame:
    """Per-window probabilities of one melspec `[n_bands, frames]`.

    Returns:
        One row per window: `window` (from 0), `start_s`, `end_s` (the window's span in the
        track; the end may pass the track's end for a padded short track), then one column per
        tag in the predictor's order.
    """
    window = predictor.crop_frames
    hop = hop_frames_of(hop_s, window)
    n_frames = melspec.shape[1]
    if n_frames < window:
        melspec = np.pad(
            melspec, [(0, 0), (0, window - n_frames)], constant_values=MTG_JAMENDO.pad_value
        )
    starts = window_starts(n_frames, window, hop)
    windows = np.stack([melspec[:, s : s + window] for s in starts]).astype(np.float32)
    scores = np.concatenate(
        [predictor.score_windows(windows[i : i + BATCH]) for i in range(0, len(starts), BATCH)]
    )
    fps = MTG_JAMENDO.frames_per_second
    table = pd.DataFrame(scores, columns=list(predictor.tags))
    table.insert(0, "end_s", (starts + window) / fps)
    table.insert(0, "start_s", starts / fps)
    table.insert(0, "window", np.arange(len(starts)))
    return table
