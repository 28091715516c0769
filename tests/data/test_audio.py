"""Audio features: the dataset's definition, decoding, and parity with Essentia itself."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.data import audio
from emotion_keras.errors import DataFileError

soundfile = pytest.importorskip("soundfile", reason="soundfile is part of the dev extra")

RATE = audio.SAMPLE_RATE_HZ


def essentia_reference():
    """The dataset's extraction chain, run by Essentia (see ../shared/data/README.md)."""
    es = pytest.importorskip("essentia.standard", reason="essentia is part of the dev extra")
    window = es.Windowing(type="hann", normalized=False)
    spectrum = es.Spectrum()
    bands = es.MelBands(
        numberBands=96,
        sampleRate=RATE,
        lowFrequencyBound=0,
        highFrequencyBound=6000,
        warpingFormula="slaneyMel",
        weighting="linear",
        normalize="unit_tri",
        type="power",
        inputSize=257,
    )
    to_db = es.UnaryOperator(type="lin2db", scale=2)

    def melspec(signal):
        frames = es.FrameGenerator(np.asarray(signal, np.float32), frameSize=512, hopSize=256)
        return np.array([to_db(bands(spectrum(window(f)))) for f in frames]).T

    def load(path):
        return es.MonoLoader(filename=str(path), sampleRate=RATE, resampleQuality=4)()

    return melspec, load


def music_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Stereo chords, a bass line, noise bursts and clicks: broadband, changing material."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 523.3))
    bass = 0.2 * np.sin(2 * np.pi * (55 + 55 * (t % 2 > 1)) * t)
    drums = rng.normal(0, 0.3, len(t)) * np.exp(-40 * (t % 0.5))
    left = chord + bass + drums
    right = 0.8 * chord + drums * 0.5 + 0.01 * rng.normal(size=len(t))
    return np.stack([left, right], axis=1).astype(np.float32)


def test_frame_count_for_a_duration():
    assert audio.n_frames_of(30 * RATE) == 1408  # the dataset's shortest tracks: 30 s
    for n in (1, 255, 256, 257, 12000):
        assert audio.melspectrogram(np.zeros(n, np.float32)).shape == (96, -(-n // 256) + 1)


def test_band_layout_follows_slaney_mel_up_to_6khz():
    filters = audio.mel_filterbank()
    assert filters.shape == (96, 257)
    centres = filters.argmax(axis=1) * RATE / 512
    assert (np.diff(centres) >= 0).all() and centres[-1] <= 6000
    # Below 1 kHz the Slaney scale is linear: equal spacing in Hz.
    low = audio.slaney_hz(np.linspace(0, audio.slaney_mel(6000.0), 98))
    assert np.allclose(np.diff(low[low < 1000]), low[1] - low[0])
    # unit_tri: every triangle has unit area in Hz.
    edges = low
    for i in (0, 40, 95):
        assert filters[i].max() * (edges[i + 2] - edges[i]) / 2 == pytest.approx(1, rel=0.2)


def test_db_scale_is_twenty_log10_of_band_power_with_a_floor():
    silence = audio.melspectrogram(np.zeros(RATE, np.float32))
    assert (silence == -200.0).all()
    quiet = audio.melspectrogram(0.01 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE))
    loud = audio.melspectrogram(0.1 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE))
    band = loud[:, 10].argmax()
    # Amplitude x10 is power x100: 20 log10(100) = +40 dB in this scale.
    assert loud[band, 10] - quiet[band, 10] == pytest.approx(40.0, abs=0.01)


@pytest.mark.parametrize("hz", [200.0, 1000.0, 3000.0, 5500.0])
def test_a_pure_tone_lands_in_the_band_around_its_frequency(hz):
    tone = 0.5 * np.sin(2 * np.pi * hz * np.arange(2 * RATE) / RATE)
    loudest = audio.melspectrogram(tone)[:, 20].argmax()
    low, high = audio.slaney_hz(np.linspace(0, audio.slaney_mel(6000.0), 98))[
        [loudest, loudest + 2]
    ]
    assert low <= hz <= high


def test_linear_resampling_matches_libsamplerate_semantics():
    x = np.arange(100, dtype=np.float32)
    y = audio.resample_linear(x, 48000, 12000)
    assert len(y) == 25
    # One input sample late from a held first sample: 0, 3, 7, 11, ...
    np.testing.assert_allclose(y[:4], [0, 3, 7, 11])


@pytest.mark.parametrize(
    "fmt, subtype, suffix",
    [
        ("WAV", "PCM_16", ".wav"),
        ("FLAC", "PCM_16", ".flac"),
        ("OGG", "VORBIS", ".ogg"),
        ("MP3", "MPEG_LAYER_III", ".mp3"),
    ],
)
def test_each_format_decodes_to_12khz_mono(tmp_path, fmt, subtype, suffix):
    path = tmp_path / f"song{suffix}"
    soundfile.write(path, music_like(2.0, 44100), 44100, format=fmt, subtype=subtype)
    signal = audio.load_audio(path)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert abs(len(signal) - 2 * RATE) <= 2
    melspec = audio.melspec_file(path)
    assert melspec.shape == (96, audio.n_frames_of(len(signal))) and melspec.dtype == np.float32


@pytest.mark.parametrize(
    "name, signal",
    [
        ("noise", np.random.default_rng(0).normal(0, 0.1, 5 * RATE)),
        ("tone", 0.5 * np.sin(2 * np.pi * 440 * np.arange(5 * RATE) / RATE)),
        (
            "chirp",
            0.3
            * np.sin(
                2 * np.pi * (100 + 500 * np.arange(5 * RATE) / RATE) * np.arange(5 * RATE) / RATE
            ),
        ),
        ("music", music_like(5.0, RATE).mean(axis=1)),
    ],
)
def test_parity_with_essentia_on_synthetic_signals(name, signal):
    essentia_melspec, _ = essentia_reference()
    ours, reference = audio.melspectrogram(signal), essentia_melspec(signal)
    assert ours.shape == reference.shape
    difference = np.abs(ours - reference).mean()
    print(f"{name}: mean |ours - Essentia| = {difference:.5f} dB")
    assert difference <= 0.01


CODECS = [
    ("WAV", "PCM_16", ".wav", 44100),
    ("FLAC", "PCM_24", ".flac", 48000),
    ("MP3", "MPEG_LAYER_III", ".mp3", 44100),
    ("OGG", "VORBIS", ".ogg", 22050),
]


@pytest.mark.parametrize("fmt, subtype, suffix, rate", CODECS)
def test_parity_with_essentia_on_the_same_decoded_music(tmp_path, fmt, subtype, suffix, rate):
    """Same decoded samples in: our resampler + features vs Essentia's Resample + features."""
    es = pytest.importorskip("essentia.standard", reason="essentia is part of the dev extra")
    essentia_melspec, _ = essentia_reference()
    path = tmp_path / f"music{suffix}"
    soundfile.write(path, music_like(8.0, rate, seed=2), rate, format=fmt, subtype=subtype)
    decoded, decoded_rate = soundfile.read(path, dtype="float32", always_2d=True)
    mono = decoded.mean(axis=1, dtype=np.float32)
    reference = essentia_melspec(
        es.Resample(inputSampleRate=decoded_rate, outputSampleRate=RATE, quality=4)(mono)
    )
    ours = audio.melspec_file(path)
    assert ours.shape == reference.shape, "same frame count"
    difference = np.abs(ours - reference).mean()
    print(f"{suffix}: mean |ours - Essentia| = {difference:.5f} dB")
    assert difference <= 0.1


@pytest.mark.parametrize("fmt, subtype, suffix, rate", CODECS[:2])
def test_whole_chain_equals_essentia_monoloader_on_lossless_files(
    tmp_path, fmt, subtype, suffix, rate
):
    """From the file: our decoder + everything vs Essentia's MonoLoader + everything.

    Lossless formats decode to the same samples in both libraries; lossy decoders (libsndfile's
    vs Essentia's FFmpeg) differ a little by themselves, which is not a feature difference.
    """
    essentia_melspec, essentia_load = essentia_reference()
    path = tmp_path / f"music{suffix}"
    soundfile.write(path, music_like(8.0, rate, seed=2), rate, format=fmt, subtype=subtype)
    ours, reference = audio.melspec_file(path), essentia_melspec(essentia_load(path))
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).mean() <= 0.01


def test_resampler_equals_essentias_on_odd_ratios():
    es = pytest.importorskip("essentia.standard", reason="essentia is part of the dev extra")
    signal = np.random.default_rng(3).normal(size=44100 * 2 + 7).astype(np.float32)
    for rate in (44100, 22050, 11025, 8000, 96000):
        ours = audio.resample_linear(signal, rate, RATE)
        theirs = es.Resample(inputSampleRate=rate, outputSampleRate=RATE, quality=4)(signal)
        assert len(ours) == len(theirs)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_undecodable_and_missing_files_are_one_line_errors(tmp_path):
    (tmp_path / "broken.mp3").write_bytes(b"ID3 this is no mp3 at all")
    with pytest.raises(DataFileError, match=r"broken\.mp3: cannot decode audio"):
        audio.load_audio(tmp_path / "broken.mp3")
    with pytest.raises(DataFileError, match=r"gone\.wav: file not found"):
        audio.load_audio(tmp_path / "gone.wav")


def test_melspec_command_writes_npy_and_reports_a_corrupt_file(tmp_path, capsys):
    songs = tmp_path / "songs" / "album"
    songs.mkdir(parents=True)
    soundfile.write(songs / "a.wav", music_like(1.0, 22050), 22050)
    soundfile.write(songs / "b.flac", music_like(1.5, 44100), 44100)
    (songs / "c.mp3").write_bytes(b"garbage")
    status = main(["melspec", str(tmp_path / "songs"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1
    assert "c.mp3: cannot decode audio" in err and "1 of 3 files failed" in err
    a = np.load(tmp_path / "out" / "album" / "a.npy")
    assert a.shape == (96, audio.n_frames_of(RATE)) and a.dtype == np.float32
    np.testing.assert_array_equal(
        np.load(tmp_path / "out" / "album" / "b.npy"), audio.melspec_file(songs / "b.flac")
    )
    assert not (tmp_path / "out" / "album" / "c.npy").exists()


def test_audio_with_nan_or_infinite_samples_is_refused_naming_the_file(tmp_path, capsys):
    signal = np.sin(np.arange(24000) / 10).astype(np.float32)
    signal[100] = np.nan
    signal[200] = np.inf
    path = tmp_path / "broken.wav"
    soundfile.write(path, signal, 12000, subtype="FLOAT")
    with pytest.raises(
        DataFileError,
        match=r"broken\.wav: 2 of 24000 audio samples are NaN or "
        r"infinite",
    ):
        audio.load_audio(path)
    assert main(["melspec", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "broken.wav: 2 of 24000 audio samples are NaN" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.npy")), "no NaN .npy is written"


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    (tmp_path / "silence.mp3").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"silence\.mp3: the file is empty \(0 bytes\)"):
        audio.load_audio(tmp_path / "silence.mp3")


def test_melspec_refuses_inputs_that_would_write_the_same_file(tmp_path, capsys):
    tone = (0.1 * np.sin(np.arange(12000) / 5)).astype(np.float32)
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
    soundfile.write(tmp_path / "one" / "a.wav", tone, 12000)
    soundfile.write(tmp_path / "one" / "a.flac", tone, 12000)
    soundfile.write(tmp_path / "two" / "b.wav", tone, 12000)
    soundfile.write(tmp_path / "one" / "b.wav", tone, 12000)
    out = tmp_path / "out"
    assert main(["melspec", str(tmp_path / "one"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a.flac and" in err and "a.wav would both be written to" in err
    assert (
        main(
            [
                "melspec",
                str(tmp_path / "one" / "b.wav"),
                str(tmp_path / "two" / "b.wav"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "would both be written to" in capsys.readouterr().err
    assert not out.exists(), "refused before anything is written"
    # Folders keep their relative layout, so distinct files never collide.
    jobs = audio.melspec_jobs([tmp_path / "two", tmp_path / "one" / "a.wav"], out)
    assert [target.relative_to(out).as_posix() for _, target in jobs] == ["b.npy", "a.npy"]


def test_melspec_into_an_unwritable_folder_is_one_error(tmp_path, capsys):
    tone = (0.1 * np.sin(np.arange(12000) / 5)).astype(np.float32)
    soundfile.write(tmp_path / "a.wav", tone, 12000)
    (tmp_path / "file").write_text("not a folder")
    assert main(["melspec", str(tmp_path / "a.wav"), "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(
            f"emotion-keras melspec: error: --out {tmp_path / 'file'}: cannot be written"
        )
        and err.count("\n") == 1
    )
