"""The one configuration object of a run, its JSON form, and named experiment configurations.

`Config` is a frozen dataclass holding every hyper-parameter with the paper's value as its default
(Yi et al. 2019, §3; where the paper is silent, the original PyTorch implementation). A run is
launched from a named configuration (one JSON file per row of the paper's Table 2, plus our own
recipes) with overrides by field name; the resolved configuration is saved as `config.json` in the
run directory and loaded back from there on resume, evaluation and export.

The named configurations are package data (`emotion_keras/experiments/`, read with
`importlib.resources`, so they work from an installed wheel; the repository's top-level
`experiments` is a link to that folder).

No other module keeps hyper-parameters as constants: they take a `Config` or explicit arguments,
and the one fixed recipe (`ORIGINAL_SCHEDULE`) is defined here.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import types
import typing
from pathlib import Path

from emotion_keras.errors import ConfigError

#: The package data folder of the named configurations.
EXPERIMENTS = importlib.resources.files("emotion_keras") / "experiments"

SCHEDULES = ("paper", "original", "cosine")
#: Beyond the paper (`Config.loss`, `optimizer`, `weight_averaging`); defaults are the paper's.
LOSSES = ("bce", "focal", "weighted_bce")
OPTIMIZERS = ("adam", "sgd")
WEIGHT_AVERAGING = ("none", "swa", "ema")
#: What `monitor` may name: the validation figures the training callback computes.
MONITORS = ("val_pr_auc_macro", "val_roc_auc_macro", "val_pr_auc_micro", "val_roc_auc_micro")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
#: `time_pooling`: the model's own pooling, or a global mean/max over time (short crops).
TIME_POOLINGS = ("model", "mean", "max")
#: `eval_mode`: K regular crops per track, sliding windows over the whole track, or the whole
#: track in one pass.
EVAL_MODES = ("crops", "windows", "track")


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of epochs trained with one optimiser: epochs [start, stop).

    Attributes:
        start, stop: the epochs of the phase (stop exclusive).
        optimizer: `adam`, or `sgd` (Nesterov momentum `momentum`, decoupled `weight_decay`).
        learning_rate: constant within the phase.
        reload_best: start the phase from the best weights so far.
    """

    start: int
    stop: int
    optimizer: str
    learning_rate: float
    reload_best: bool = False
    momentum: float = 0.0
    weight_decay: float = 0.0


#: The original implementation's solver (`schedule="original"`): Adam at 1e-4 for 60 epochs,
#: then SGD with Nesterov momentum 0.9 and weight decay 1e-4 at 1e-3, 1e-4 and 1e-5 for 20 epochs
#: each, reloading the best weights at each switch. The last phase runs to `epochs`.
ORIGINAL_SCHEDULE = (
    Phase(0, 60, "adam", 1e-4),
    Phase(60, 80, "sgd", 1e-3, reload_best=True, momentum=0.9, weight_decay=1e-4),
    Phase(80, 100, "sgd", 1e-4, reload_best=True, momentum=0.9, weight_decay=1e-4),
    Phase(100, 120, "sgd", 1e-5, reload_best=True, momentum=0.9, weight_decay=1e-4),
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a training run.

    Attributes:
        model: registered architecture (`emotion-keras models` lists them).
        data_dir: root of the melspec tree (`00/ ... 99/` of `.npy`), or a packed corpus (`.h5`,
            `emotion-keras melspecs pack`); None means the demo dataset.
        meta_dir: MTG-Jamendo metadata folder (`splits/`, `tags/`); None means the demo dataset.
        split: which of the five official splits (MediaEval 2019 used 0).
        n_bands: mel bands of every melspec (the dataset's 96).
        crop_frames: frames per crop, the paper's T = 1280 (27.3 s).
        batch_size: global batch size (paper: 64).
        val_crops: regular crops per track for validation (paper §3.3: 10).
        test_crops: regular crops per track for testing (paper §3.3: 20).
        epochs: epochs to train (the original schedule uses 60 + 3 x 20).
        learning_rate: the learning rate (paper: Adam at 0.001); schedule `cosine`'s peak.
        dropout: rate of the Dropout before the output layer (paper: 0.5; 0 leaves it out).
        schedule: `paper` (a constant rate, Adam unless `optimizer` says otherwise), `original`
            (the original code's Adam then SGD), or `cosine` (linear warm-up over
            `warmup_epochs`, then cosine decay to 0 at `epochs`, per step).
        validate_every: run the AUC callback every N epochs (the original validated every 5).
        val_cache_mb: keep the validation crops in RAM after the first validation when they
            fit in this many MB (they do not change between epochs), else in a temporary file
            in the run directory when its disk has room (removed when training ends); 0 reads
            them every time. Does not change results. Split 0's 10 crops of 3,802 tracks take
            9.3 GB from a float16 packed corpus, 18.7 GB from float32 files.
        monitor: the `logs` key that picks the best checkpoint.
        early_stopping_patience: epochs without improvement before stopping; 0 disables it.
        seed: fixes weight initialisation, shuffling and crop positions.
        train_tracks: use only the first N training tracks (0 = all), for quick runs.
        val_tracks: use only the first N validation tracks (0 = all).
        mixed_precision: train under a mixed-precision policy.
        jit_compile: compile the training step with XLA.
        strategy: tf.distribute strategy (`auto`, `default`, `mirrored`, `multiworker`; see
            `emotion_keras.training.distribute`). `batch_size` is the global batch over all
            replicas.

    Beyond the paper (training recipes of later MediaEval entries; the defaults leave the
    paper's behaviour unchanged; see README "Beyond the paper"):
        loss: `bce` (the paper), `focal` (Keras's binary focal cross-entropy with class
            balancing), or `weighted_bce`: each tag's positive term weighted by 1 / p, p the
            tag's frequency in the training split (tracks actually trained on).
        focal_alpha, focal_gamma: the focal loss's alpha (weight of positives) and gamma.
        optimizer: `adam` or `sgd` (Nesterov momentum) for schedules `paper` and `cosine`;
            `original` fixes its own.
        momentum: SGD's Nesterov momentum.
        weight_decay: weight decay; 0 disables it. Decoupled (Keras's `weight_decay`: after
            each step `w -= lr * weight_decay * w`) unless `coupled_weight_decay`.
        coupled_weight_decay: SGD only: add `weight_decay * w` to the gradient before the
            momentum update instead, as PyTorch's `SGD(weight_decay=...)` does (with momentum
            0.9 about ten times stronger than the decoupled decay of the same value).
        clipnorm: clip the global norm of all gradients together to this (PyTorch's
            `clip_grad_norm_`, Keras's `global_clipnorm`); 0 disables it.
        warmup_epochs: schedule `cosine` only: linear warm-up from 0 to `learning_rate` over
            these epochs, then cosine decay to 0 at `epochs`.
        mixup_alpha: mixup of training batches (inputs and multi-hot labels) with a mixing
            weight drawn from Beta(alpha, alpha) per batch; 0 disables it.
        time_masks, time_mask_frames: SpecAugment-style masking in training: this many masks
            per crop of up to `time_mask_frames` consecutive frames each (set to the crop's
            mean); 0 masks disables it.
        freq_masks, freq_mask_bands: the same over mel bands.
        weight_averaging: `none`, `swa` (stochastic weight averaging over the last
            `swa_fraction` of the epochs, BatchNorm statistics refreshed by a pass over the
            training data) or `ema` (exponential moving average of the weights, Keras's
            `use_ema`). Validation, the best checkpoint, evaluation and export use the averaged
            weights.
        swa_fraction: the fraction of the epochs (the last ones) that SWA averages. SWA's
            first epoch and the cosine schedule follow `epochs`, so raising `epochs` when
            resuming a run moves them.
        ema_momentum: the EMA's momentum (Keras's `ema_momentum`), per step.
        time_pooling: `model` (the architecture's own pooling, which fixes the paper's models
            to about 1,280 frames), or `mean`/`max`: a global mean or maximum over what is left
            of the time axis, so that a paper model takes crops of any length (e.g. the 128-256
            frames of the 2021 winner's recipe). `convs` averages over time by itself.
        eval_mode: how validation, `evaluate` and exports average a track: `crops` (`val_crops`
            and `test_crops` regular crops, paper §3.3) or `windows` (crop-long windows
            sliding over the whole track every `window_hop_frames`, the last one ending at the
            track's end: every frame is seen, however long the track), or `track` (the whole
            track through the network in one pass, as the 2021 winner tested; models that
            take any length only: `convs`).
        window_hop_frames: frames between window starts in `windows` mode; 0 means
            `crop_frames` (windows side by side).
    """

    model: str = "vgg6"
    data_dir: str | None = None
    meta_dir: str | None = None
    split: int = 0
    n_bands: int = 96
    crop_frames: int = 1280
    batch_size: int = 64
    val_crops: int = 10
    test_crops: int = 20
    epochs: int = 120
    learning_rate: float = 1e-3
    dropout: float = 0.5
    schedule: str = "paper"
    validate_every: int = 1
    val_cache_mb: int = 2048
    monitor: str = "val_pr_auc_macro"
    early_stopping_patience: int = 0
    seed: int = 0
    train_tracks: int = 0
    val_tracks: int = 0
    mixed_precision: bool = False
    jit_compile: bool = False
    strategy: str = "auto"
    # Beyond the paper (see the docstring); the defaults are the paper's behaviour.
    loss: str = "bce"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    coupled_weight_decay: bool = False
    clipnorm: float = 0.0
    warmup_epochs: int = 0
    mixup_alpha: float = 0.0
    time_masks: int = 0
    time_mask_frames: int = 0
    freq_masks: int = 0
    freq_mask_bands: int = 0
    weight_averaging: str = "none"
    swa_fraction: float = 0.2
    ema_momentum: float = 0.99
    time_pooling: str = "model"
    eval_mode: str = "crops"
    window_hop_frames: int = 0

    def __post_init__(self):
        positive = (
            "n_bands",
            "crop_frames",
            "batch_size",
            "val_crops",
            "test_crops",
            "epochs",
            "validate_every",
        )
        for name in positive:
            if getattr(self, name) < 1:
                _invalid(name, getattr(self, name), "must be at least 1")
        for name in (
            "early_stopping_patience",
            "train_tracks",
            "val_tracks",
            "seed",
            "val_cache_mb",
        ):
            if getattr(self, name) < 0:
                _invalid(name, getattr(self, name), "must be 0 or more")
        if not 0 <= self.split <= 4:
            _invalid("split", self.split, "MTG-Jamendo has splits 0 to 4")
        if not 0 <= self.dropout < 1:
            _invalid("dropout", self.dropout, "must be at least 0 and below 1")
        if not self.learning_rate > 0:
            _invalid("learning_rate", self.learning_rate, "must be positive")
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("monitor", self.monitor, MONITORS, "(the validation figures a run computes)")
        _check_choice("strategy", self.strategy, STRATEGIES)
        self._check_recipe()
        _check_choice("time_pooling", self.time_pooling, TIME_POOLINGS)
        _check_choice("eval_mode", self.eval_mode, EVAL_MODES)
        if not 0 <= self.window_hop_frames <= self.crop_frames:
            _invalid(
                "window_hop_frames",
                self.window_hop_frames,
                f"must be 0 (= crop_frames) to crop_frames ({self.crop_frames}); a longer hop "
                f"would skip frames",
            )
        if (self.data_dir is None) != (self.meta_dir is None):
            raise ConfigError(
                "data_dir and meta_dir go together: give both for a real "
                "dataset, or neither for the demo dataset",
                arguments=("data_dir", "meta_dir"),
            )

    def _check_recipe(self) -> None:
        """The fields beyond the paper (one ConfigError naming the field)."""
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("weight_averaging", self.weight_averaging, WEIGHT_AVERAGING)
        for name in ("focal_alpha", "swa_fraction"):
            if not 0 < getattr(self, name) <= 1:
                _invalid(name, getattr(self, name), "must be above 0 and at most 1")
        for name in ("momentum", "ema_momentum"):
            if not 0 <= getattr(self, name) < 1:
                _invalid(name, getattr(self, name), "must be at least 0 and below 1")
        for name in (
            "focal_gamma",
            "weight_decay",
            "clipnorm",
            "warmup_epochs",
            "mixup_alpha",
            "time_masks",
            "time_mask_frames",
            "freq_masks",
            "freq_mask_bands",
        ):
            if getattr(self, name) < 0:
                _invalid(name, getattr(self, name), "must be 0 or more")
        for masks, width, size, axis in (
            ("time_masks", "time_mask_frames", "crop_frames", "frames"),
            ("freq_masks", "freq_mask_bands", "n_bands", "bands"),
        ):
            if getattr(self, masks) and not 1 <= getattr(self, width) <= getattr(self, size):
                _invalid(
                    width,
                    getattr(self, width),
                    f"with {masks} > 0 must be 1 to {size} ({getattr(self, size)} {axis})",
                )
        if self.coupled_weight_decay and self.optimizer != "sgd":
            _invalid("coupled_weight_decay", True, "needs optimizer sgd")
        if self.warmup_epochs and self.schedule != "cosine":
            _invalid("warmup_epochs", self.warmup_epochs, "needs schedule cosine")
        if self.warmup_epochs >= self.epochs and self.warmup_epochs:
            _invalid("warmup_epochs", self.warmup_epochs, f"must be below epochs ({self.epochs})")
        if self.schedule == "original":
            # The original schedule fixes its own optimisers, and restarts them per phase (which
            # would restart any weight average).
            for name, default in (
                ("optimizer", "adam"),
                ("weight_decay", 0.0),
                ("weight_averaging", "none"),
            ):
                if getattr(self, name) != default:
                    _invalid(
                        name,
                        getattr(self, name),
                        "applies to schedules paper and cosine (original fixes its optimisers)",
                    )

    @property
    def uses_demo_data(self) -> bool:
        return self.data_dir is None

    @property
    def eval_hop_frames(self) -> int | None:
        """The sliding windows' hop in `windows` mode; None in `crops` mode."""
        if self.eval_mode != "windows":
            return None
        return self.window_hop_frames or self.crop_frames

    def replace(self, **overrides) -> Config:
        """A copy with fields overridden by name; values are coerced from strings if needed."""
        return dataclasses.replace(self, **coerce_overrides(overrides))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path) -> None:
        """Writes the configuration atomically (a crash never leaves half a file)."""
        from emotion_keras.fileio import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def with_absolute_paths(self) -> Config:
        """A copy whose data folders are absolute, so the run works from any directory."""
        return self.replace(
            **{
                name: str(Path(getattr(self, name)).expanduser().resolve())
                for name in ("data_dir", "meta_dir")
                if getattr(self, name) is not None
            }
        )

    @classmethod
    def from_dict(cls, values: dict, source: str = "configuration") -> Config:
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise ConfigError(
                f"{source}: unknown field(s) {', '.join(unknown)} (valid fields: "
                f"{', '.join(field_names())})"
            )
        return cls(**coerce_overrides(values, source))

    @classmethod
    def from_json(cls, path: str | Path) -> Config:
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a JSON object of configuration fields")
        return cls.from_dict(values, source=str(path))


def field_names() -> list[str]:
    return [field.name for field in dataclasses.fields(Config)]


def _invalid(name: str, value, reason: str):
    raise ConfigError(f"{name} {value!r}: {reason}", arguments=(name,))


def _check_choice(name: str, value, choices, note: str = "") -> None:
    if value not in choices:
        _invalid(
            name, value, f"expected one of {', '.join(choices)}" + (f" {note}" if note else "")
        )


def _field_type(name: str):
    hints = typing.get_type_hints(Config)
    hint = hints[name]
    if isinstance(hint, types.UnionType):  # `str | None`
        return next(arg for arg in typing.get_args(hint) if arg is not type(None)), True
    return hint, False


def coerce_overrides(values: dict, source: str = "override") -> dict:
    """Converts override values (strings from flags, or JSON values) to each field's type."""
    result = {}
    for name, value in values.items():
        if name not in field_names():
            raise ConfigError(
                f"{source}: unknown field {name!r} (valid fields: {', '.join(field_names())})"
            )
        kind, optional = _field_type(name)
        if value is None or (optional and isinstance(value, str) and value.lower() == "none"):
            if not optional:
                raise ConfigError(f"{name}: a value is required", arguments=(name,))
            result[name] = None
            continue
        try:
            if kind is bool:
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    value = value.lower() in ("true", "1", "yes")
                elif not isinstance(value, bool):
                    raise ValueError
            elif kind is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                value = int(value)
            elif kind is float:
                value = float(value)
            else:
                value = str(value)
        except ValueError:
            raise ConfigError(
                f"{name} {value!r}: expected {kind.__name__}", arguments=(name,)
            ) from None
        result[name] = value
    return result


def experiment_names() -> list[str]:
    """The named configurations shipped with the package, sorted."""
    return sorted(
        entry.name.removesuffix(".json")
        for entry in EXPERIMENTS.iterdir()
        if entry.name.endswith(".json")
    )


def load_experiment(name: str | Path, **overrides) -> Config:
    """A named configuration (`vgg6`) or a JSON file, with overrides applied by field name.

    Raises:
        ConfigError: an unknown name (listing the known ones), a bad file or a bad override.
    """
    path = Path(name)
    if path.suffix == ".json" or path.is_file():
        base = Config.from_json(path)
    else:
        resource = EXPERIMENTS / f"{name}.json"
        if not resource.is_file():
            raise ConfigError(
                f"config {name}: no such experiment (known: "
                f"{', '.join(experiment_names())}; or give the path of a JSON "
                f"file)",
                arguments=("config",),
            )
        base = Config.from_dict(
            json.loads(resource.read_text(encoding="utf-8")), source=f"experiment {name}"
        )
    return base.replace(**overrides)
