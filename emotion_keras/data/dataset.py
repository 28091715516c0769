"""The facts of the MTG-Jamendo mel-spectrograms, in one place.

Every module that needs a property of the dataset's features (band count, frame rate, the
silence floor that pads short tracks, the extraction parameters) reads it from `MTG_JAMENDO`
here; none defines its own copy. The values are those of the dataset's own extraction script
(Essentia; see `../shared/data/README.md` and `emotion_keras.data.audio`).

This module holds facts about the data, not hyper-parameters: those live in
`emotion_keras.config.Config`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MelspecSpec:
    """How a corpus's mel-spectrograms were computed and stored.

    Attributes:
        n_bands: mel bands per frame (rows of every `[bands, frames]` array).
        sample_rate_hz: audio rate the features were computed at.
        frame_size: samples per analysis frame (FFT size).
        hop_length: samples between frame starts.
        low_hz, high_hz: frequency range of the mel bands.
        pad_value: the value of frames past the end of a track: the dB floor of the features
            (`20 log10` with a floor at -200 dB, digital silence), so a padded crop reads as the
            track followed by silence.
        tag_prefix: what every tag name of the mood/theme subset starts with.
        mean_db, std_db: mean and standard deviation of the training split's values, as the
            2021 winner measured them on 224-frame crops of split 0 (`stats` in
            vibour/emotion-theme-recognition, `experiments/convs-m96-i224-*/parameters.json`;
            their 128-frame crops gave -24.42 and 19.35); the `convs` model standardises its
            input with them.
    """

    n_bands: int = 96
    sample_rate_hz: int = 12_000
    frame_size: int = 512
    hop_length: int = 256
    low_hz: float = 0.0
    high_hz: float = 6_000.0
    pad_value: float = -200.0
    tag_prefix: str = "mood/theme---"
    mean_db: float = -24.160884808114105
    std_db: float = 19.080980731935075

    @property
    def frames_per_second(self) -> float:
        """46.875 for MTG-Jamendo: a 1,280-frame crop is 27.3 s."""
        return self.sample_rate_hz / self.hop_length


#: The official `melspecs` download of MTG-Jamendo.
MTG_JAMENDO = MelspecSpec()
