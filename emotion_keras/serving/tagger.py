"""The Python API: `Tagger.load(run_or_export).tag(files_or_arrays)` -> a table of probabilities.

    from emotion_keras import Tagger

    tagger = Tagger.load("runs/demo-vgg6-split0/export")   # a run directory works too
    table = tagger.tag(["song.mp3", "track.npy"])          # rows: inputs, columns: 56 tags
    table.top_k(3)                                         # file, rank, tag, probability
    table.decisions()                                      # bool table (evaluated runs only)
    tagger.timeline("song.mp3")                            # per-window probabilities

Items are audio files (the dataset's own melspec is computed), `.npy` melspecs, or arrays
`[96, frames]` already in the dataset's features. Probabilities are crop-averaged exactly as
`emotion-keras predict` and `evaluate` average them (`emotion_keras.serving.predict`), so a run
and its export give the same table. A bad item raises its one-line `EmotionKerasError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emotion_keras.errors import DataFileError, ModelError
from emotion_keras.serving import predict, timeline


class TagTable(pd.DataFrame):
    """Probabilities: one row per input (index: file name or `array N`), one column per tag.

    `thresholds` (per tag, from validation) is None when the model source was not evaluated.
    """

    _metadata = ["thresholds"]

    @property
    def _constructor(self):
        return TagTable

    def top_k(self, k: int = 5) -> pd.DataFrame:
        """The `k` most probable tags of each input: columns `input`, `rank` (1..k), `tag`,
        `probability`, inputs in order (ties in tag order)."""
        if k < 1:
            raise ModelError(f"k {k}: must be at least 1", arguments=("k",))
        rows = []
        for name, probabilities in zip(self.index, self.to_numpy()):
            order = np.argsort(-probabilities, kind="stable")[:k]
            rows += [
                (name, rank + 1, self.columns[j], probabilities[j]) for rank, j in enumerate(order)
            ]
        return pd.DataFrame(rows, columns=["input", "rank", "tag", "probability"])

    def decisions(self) -> pd.DataFrame:
        """Booleans like the table: probability >= the tag's threshold (in float32, as served).

        Raises:
            ModelError: the model source was not evaluated (no thresholds).
        """
        if getattr(self, "thresholds", None) is None:
            raise ModelError(
                "no thresholds: the run was not evaluated (run `emotion-keras evaluate RUN`, "
                "and export again for an export)"
            )
        cutoffs = np.asarray(self.thresholds, np.float32)
        return pd.DataFrame(
            self.to_numpy(np.float32) >= cutoffs, index=self.index, columns=self.columns
        )


class Tagger:
    """Tags music with a trained run or an export; see the module docstring."""

    def __init__(self, predictor: predict.Predictor):
        self.predictor = predictor

    @classmethod
    def load(cls, path: str | Path) -> Tagger:
        """A tagger from a run directory (best checkpoint) or an export folder."""
        return cls(predict.load_predictor(path))

    @property
    def tags(self) -> tuple[str, ...]:
        return self.predictor.tags

    @property
    def thresholds(self) -> np.ndarray | None:
        return self.predictor.thresholds

    def melspec(self, item) -> np.ndarray:
        """The `[n_bands, frames]` features of a file or an array."""
        if isinstance(item, (str, Path)):
            return predict.melspec_of(Path(item), self.predictor.n_bands)
        array = np.asarray(item)
        if array.ndim != 2 or array.shape[0] != self.predictor.n_bands or array.shape[1] < 1:
            raise DataFileError(
                f"array of shape {array.shape}: expected [{self.predictor.n_bands}, frames]"
            )
        return array.astype(np.float32, copy=False)

    def tag(self, items) -> TagTable:
        """Probabilities of each item (a file, an array, or a list of them)."""
        if isinstance(items, (str, Path, np.ndarray)):
            items = [items]
        names, rows = [], []
        for i, item in enumerate(items):
            names.append(str(item) if isinstance(item, (str, Path)) else f"array {i}")
            rows.append(self.predictor(self.melspec(item)))
        table = TagTable(
            np.asarray(rows, np.float32).reshape(len(rows), len(self.tags)),
            index=pd.Index(names, name="input"),
            columns=list(self.tags),
        )
        table.thresholds = self.thresholds
        return table

    def timeline(self, item, hop_s: float | None = None) -> pd.DataFrame:
        """Per-window probabilities of one item (`emotion_keras.serving.timeline`)."""
        return timeline.timeline(self.predictor, self.melspec(item), hop_s)
