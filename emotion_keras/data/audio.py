"""The MTG-Jamendo mel-spectrogram of any audio file, computed exactly as the dataset's was.

The dataset's melspecs were made with Essentia (`../shared/data/README.md`):

    MonoLoader(sampleRate=12000, resampleQuality=4)    decode, average the channels, resample
    FrameCutter(frameSize=512, hopSize=256)            centred frames, zero-padded at the ends
    Windowing(type="hann", normalized=False)
    Spectrum()                                         magnitude of the 512-point FFT
    MelBands(numberBands=96, lowFrequencyBound=0, highFrequencyBound=6000,
             warpingFormula="slaneyMel", weighting="linear", normalize="unit_tri",
             type="power")                             triangles applied to the power spectrum
    UnaryOperator(type="lin2db", scale=2)              2 * 10 log10, floor at -200 dB

stored as float32 `[96 bands, frames]`. This module computes the same chain in NumPy, so users
need no Essentia at run time; `tests/test_audio.py` checks it against Essentia itself. Details
that matter for agreement, each verified against Essentia 2.1b6:

- `resampleQuality=4` is libsamplerate's linear converter: output sample n is the input linearly
  interpolated at position `n / ratio - 1` (it starts from a held first sample, so the output is
  one input sample late), with the ratio held in single precision, and `ceil(len / step)` output
  samples.
- Frames are centred on multiples of the hop: frame i covers samples `[256 i - 256, 256 i + 256)`,
  zero outside the signal, and there are `ceil(n / 256) + 1` of them.

Decoding uses `soundfile` (libsndfile: WAV, FLAC, OGG/Vorbis, MP3), an optional dependency
(`pip install emotion_keras[audio]`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import DataFileError

SAMPLE_RATE_HZ = MTG_JAMENDO.sample_rate_hz
FRAME_SIZE = MTG_JAMENDO.frame_size
HOP_LENGTH = MTG_JAMENDO.hop_length
N_BANDS = MTG_JAMENDO.n_bands
LOW_HZ, HIGH_HZ = MTG_JAMENDO.low_hz, MTG_JAMENDO.high_hz
# Essentia's lin2db floor in power: 10 ** (pad_value / 20), i.e. -100 dB times the scale 2.
DB_FLOOR_POWER = 10.0 ** (MTG_JAMENDO.pad_value / 20.0)
FRAMES_PER_BLOCK = 4096  # frames per FFT block: bounds memory on hour-long tracks
#: What `soundfile` (libsndfile) decodes.
AUDIO_SUFFIXES = (".mp3", ".wav", ".ogg", ".flac")


def load_audio(path: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Decodes an audio file to float32 mono at `sample_rate_hz`, as Essentia's MonoLoader.

    Raises:
        DataFileError: missing, undecodable or empty file.
    """
    path = Path(path)
    try:
        import soundfile
    except ImportError:
        raise DataFileError(
            f"{path}: decoding audio needs the `audio` extra "
            f"(pip install 'emotion_keras[audio]', or make predict)"
        ) from None
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: the file is empty (0 bytes), expected audio")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile reports every decoding problem as its own error
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataFileError(f"{path}: cannot decode audio ({message})") from None
    if samples.size == 0:
        raise DataFileError(f"{path}: holds no audio samples")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).any(axis=1).sum())
        raise DataFileError(
            f"{path}: {bad} of {len(samples)} audio samples are NaN or "
            f"infinite (expected finite sample values)"
        )
    mono = samples.mean(axis=1, dtype=np.float32)  # MonoMixer(type="mix")
    return resample_linear(mono, rate, sample_rate_hz)


def resample_linear(signal: np.ndarray, in_rate_hz: int, out_rate_hz: int) -> np.ndarray:
    """libsamplerate's linear converter, as Essentia's Resample(quality=4) runs it."""
    if in_rate_hz == out_rate_hz:
        return np.asarray(signal, dtype=np.float32)
    ratio = float(np.float32(out_rate_hz / in_rate_hz))  # Essentia passes the ratio as float
    step = 1.0 / ratio
    n_out = math.ceil(len(signal) / step - 1e-9)
    positions = np.arange(n_out, dtype=np.float64) * step - 1.0
    return np.interp(positions, np.arange(len(signal)), signal).astype(np.float32)


def slaney_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (Auditory Toolbox)."""
    hz = np.asarray(hz, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(
        hz < 1000.0, hz / (200.0 / 3), 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step
    )


def slaney_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(mel < 15.0, mel * (200.0 / 3), 1000.0 * np.exp(log_step * (mel - 15.0)))


def mel_filterbank(
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    n_fft: int = FRAME_SIZE,
    n_bands: int = N_BANDS,
    low_hz: float = LOW_HZ,
    high_hz: float = HIGH_HZ,
) -> np.ndarray:
    """`[n_bands, n_fft // 2 + 1]` triangles with unit area, as Essentia's MelBands makes them.

    Band edges are equally spaced on Slaney's mel scale; each triangle is linear in Hz between
    its edges, evaluated at the FFT bin frequencies, and divided by its half-width in Hz
    (`unit_tri`: every triangle has area 1).
    """
    edges = slaney_hz(np.linspace(slaney_mel(low_hz), slaney_mel(high_hz), n_bands + 2))
    bins = np.arange(n_fft // 2 + 1) * (sample_rate_hz / 2.0) / (n_fft // 2)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - low) / (centre - low)
    falling = (high - bins) / (high - centre)
    weights = np.where(
        (bins >= low) & (bins < centre),
        rising,
        np.where((bins >= centre) & (bins < high), falling, 0.0),
    )
    return weights / ((high - low) / 2.0)


def n_frames_of(n_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Frames of a signal of `n_samples` (centred frames, Essentia's FrameCutter)."""
    return math.ceil(n_samples / hop_length) + 1 if n_samples else 0


def melspectrogram(signal: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The dataset's log-mel spectrogram of a 12 kHz mono signal: float32 `[96, frames]` in dB.

    Raises:
        DataFileError: a signal at another rate (resample with `load_audio` first) or empty.
    """
    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise DataFileError(
            f"sample rate {sample_rate_hz} Hz: the dataset's features are "
            f"defined at {SAMPLE_RATE_HZ} Hz"
        )
    signal = np.asarray(signal, dtype=np.float32)
    n_frames = n_frames_of(len(signal))
    if n_frames == 0:
        raise DataFileError("empty signal: no frames")
    half = FRAME_SIZE // 2
    padded = np.zeros(half + len(signal) + FRAME_SIZE, dtype=np.float32)
    padded[half : half + len(signal)] = signal
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME_SIZE) / (FRAME_SIZE - 1))
    window = window.astype(np.float32)
    filters = mel_filterbank().astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME_SIZE)[::HOP_LENGTH][:n_frames]
    out = np.empty((N_BANDS, n_frames), dtype=np.float32)
    for start in range(0, n_frames, FRAMES_PER_BLOCK):
        block = frames[start : start + FRAMES_PER_BLOCK] * window
        power = np.abs(np.fft.rfft(block, axis=1)).astype(np.float32) ** 2
        bands = power @ filters.T
        # float64 so that the floor is exactly -200 dB, as Essentia's 2 x (-100).
        db = 20.0 * np.log10(np.maximum(bands.astype(np.float64), DB_FLOOR_POWER))
        out[:, start : start + len(block)] = db.T
    return out


def melspec_file(path: str | Path) -> np.ndarray:
    """Decodes `path` and returns its dataset-style mel-spectrogram `[96, frames]`."""
    return melspectrogram(load_audio(path))


def melspec_jobs(inputs, out_dir: str | Path) -> list[tuple[Path, Path]]:
    """Where the melspec of each audio input goes: `(audio file, .npy file)` pairs.

    A file given by itself goes to `out_dir/NAME.npy`; a folder's audio files keep their path
    relative to the folder. Two inputs that would write the same `.npy` (`a.wav` and `a.mp3`, or
    files of the same name from two folders) are refused before anything is written.

    Raises:
        DataFileError: no audio files, or two inputs for one output (naming both).
    """
    out_dir = Path(out_dir)
    jobs = []
    for item in map(Path, inputs):
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
                jobs.append((path, out_dir / path.relative_to(item).with_suffix(".npy")))
        else:
            jobs.append((item, out_dir / Path(item.name).with_suffix(".npy")))
    if not jobs:
        raise DataFileError(
            f"{' '.join(map(str, inputs))}: no audio files found ({' '.join(AUDIO_SUFFIXES)})"
        )
    first_source: dict[Path, Path] = {}
    for source, target in jobs:
        if target in first_source:
            raise DataFileError(
                f"{first_source[target]} and {source} would both be written to "
                f"{target}; rename one, or give them in separate runs with "
                f"different out_dir folders",
                arguments=("out_dir",),
            )
        first_source[target] = source
    return jobs
