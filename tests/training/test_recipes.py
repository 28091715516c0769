"""Recipe options beyond the paper: losses, optimiser, schedule, mixup, SpecAugment, SWA and EMA.

Each option is shown to change training as it claims; the defaults are shown to leave the
paper's training as it was. One slow end-to-end run switches every option on.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from emotion_keras import training
from emotion_keras.config import Config, Phase, load_experiment
from emotion_keras.data import demo, metadata
from emotion_keras.data.augment import mixup_batches
from emotion_keras.errors import ConfigError
from emotion_keras.models.augment import SpecAugment, with_spec_augment, without_spec_augment
from emotion_keras.rundir import RunDir
from emotion_keras.training import averaging, losses, optimization, trainer
from emotion_keras.training.callbacks import ResumableCheckpoint, ValidationAUC


# Configuration.
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss": "hinge"}, r"^loss 'hinge': expected one of bce, focal, weighted_bce"),
        ({"optimizer": "rmsprop"}, r"^optimizer 'rmsprop': expected one of adam, sgd"),
        ({"weight_averaging": "polyak"}, r"^weight_averaging 'polyak': expected one of"),
        ({"focal_alpha": 0}, r"^focal_alpha 0.0: must be above 0"),
        ({"swa_fraction": 1.5}, r"^swa_fraction 1.5: must be above 0 and at most 1"),
        ({"momentum": 1}, r"^momentum 1.0: must be at least 0 and below 1"),
        ({"clipnorm": -1}, r"^clipnorm -1.0: must be 0 or more"),
        ({"mixup_alpha": -0.2}, r"^mixup_alpha -0.2: must be 0 or more"),
        ({"time_masks": 2}, r"^time_mask_frames 0: with time_masks > 0 must be 1 to crop_frames"),
        ({"freq_masks": 1, "freq_mask_bands": 97}, r"^freq_mask_bands 97: with freq_masks > 0"),
        ({"warmup_epochs": 2}, r"^warmup_epochs 2: needs schedule cosine"),
        ({"schedule": "cosine", "warmup_epochs": 120}, r"^warmup_epochs 120: must be below"),
        ({"schedule": "original", "optimizer": "sgd"}, r"^optimizer 'sgd': applies to sched"),
        ({"coupled_weight_decay": True}, r"^coupled_weight_decay True: needs optimizer sgd"),
        ({"schedule": "original", "weight_averaging": "swa"}, r"^weight_averaging 'swa': applies"),
    ],
)
def test_bad_recipe_fields_are_named_and_the_cli_names_the_flag(overrides, message):
    from emotion_keras.cli import render_error

    with pytest.raises(ConfigError, match=message) as raised:
        Config().replace(**overrides)
    field = message.lstrip("^").split(" ")[0]
    assert render_error(raised.value).startswith("--" + field.replace("_", "-"))


def test_defaults_keep_the_paper_training():
    config = Config()
    assert (config.loss, config.optimizer, config.weight_averaging) == ("bce", "adam", "none")
    assert (config.mixup_alpha, config.clipnorm, config.weight_decay) == (0, 0, 0)
    assert (config.time_masks, config.freq_masks) == (0, 0)
    assert optimization.schedule_phases(config) == [Phase(0, 120, "adam", 1e-3)]
    optimizer = optimization.make_optimizer(optimization.schedule_phases(config)[0], config)
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert optimizer.global_clipnorm is None and not optimizer.use_ema
    assert optimizer.weight_decay is None
    assert losses.make_loss(config) == "binary_crossentropy"


# Losses.
def test_weighted_bce_weights_positives_by_inverse_training_frequency():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=bool)
    weights = losses.positive_weights(labels)
    np.testing.assert_allclose(weights, [4 / 3, 4, 4])  # the absent tag counts as one positive
    y = np.array([[1.0, 0.0, 1.0]], dtype=np.float32)
    p = np.array([[0.7, 0.2, 0.4]], dtype=np.float32)
    loss = losses.PositiveWeightedBCE(weights)
    expected = -np.mean(weights * y * np.log(p) + (1 - y) * np.log(1 - p))
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
    plain = keras.losses.BinaryCrossentropy()(y, p)
    assert float(losses.PositiveWeightedBCE(np.ones(3))(y, p)) == pytest.approx(float(plain))
    restored = losses.PositiveWeightedBCE.from_config(loss.get_config())
    assert restored.pos_weight == pytest.approx(list(weights))


def test_focal_loss_is_keras_with_the_configured_alpha_and_gamma():
    loss = losses.make_loss(Config(loss="focal", focal_alpha=0.3, focal_gamma=1.5))
    assert isinstance(loss, keras.losses.BinaryFocalCrossentropy)
    assert (loss.alpha, loss.gamma, loss.apply_class_balancing) == (0.3, 1.5, True)


def test_the_run_weights_the_loss_by_the_training_tracks_it_trains_on(tmp_path):
    data_dir, meta_dir = demo.demo_paths(tmp_path / "none")  # nothing is read
    train_set = _subset(np.array([[1, 0], [1, 1], [0, 1], [1, 1], [0, 0]], dtype=bool))
    data = trainer._RunData(train_set, train_set, np.zeros(5, int), np.zeros(5, int))
    config = Config(data_dir=str(data_dir), meta_dir=str(meta_dir), loss="weighted_bce")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    recipe = trainer._recipe(config.replace(batch_size=2), run, data, _single())
    assert recipe.loss.pos_weight == pytest.approx([5 / 3, 5 / 3])
    assert recipe.steps_per_epoch == 3 and recipe.averaging is None
    written = pd.read_csv(run.loss_weights_file)
    assert list(written["positive_tracks"]) == [3, 3]
    assert list(written["frequency"]) == pytest.approx([0.6, 0.6])
    assert list(written["pos_weight"]) == pytest.approx([5 / 3, 5 / 3])


def _subset(labels):
    n = len(labels)
    return metadata.Subset(
        name="split-0/train",
        track_ids=np.array([f"t{i}" for i in range(n)]),
        melspec_paths=np.array([f"00/{i}.npy" for i in range(n)]),
        durations_s=np.full(n, 30.0),
        labels=labels,
        tags=tuple(f"mood/theme---tag{j}" for j in range(labels.shape[1])),
    )


def _single():
    from emotion_keras.training import distribute

    return distribute.Workers()


# Optimisation.
def test_cosine_schedule_warms_up_linearly_then_decays_to_zero():
    config = Config(schedule="cosine", learning_rate=0.5, epochs=10, warmup_epochs=2)
    phase = optimization.schedule_phases(config)[0]
    rate = optimization.learning_rate(phase, config, steps_per_epoch=5)  # 10 warm-up steps
    values = {step: float(rate(step)) for step in (0, 5, 10, 30, 50, 60)}
    assert values[0] == pytest.approx(0.0)
    assert values[5] == pytest.approx(0.25)  # half-way up
    assert values[10] == pytest.approx(0.5)  # the peak, start of the decay
    assert values[30] == pytest.approx(0.25, abs=1e-6)  # half-way down: (1 + cos(pi / 2)) / 2
    assert values[50] == pytest.approx(0.0, abs=1e-7)
    assert values[60] == pytest.approx(0.0, abs=1e-7)
    no_warmup = optimization.learning_rate(phase, config.replace(warmup_epochs=0), 5)
    assert float(no_warmup(0)) == pytest.approx(0.5)
    assert float(no_warmup(25)) == pytest.approx(0.25, abs=1e-6)


def test_sgd_nesterov_weight_decay_clipnorm_and_ema_reach_the_optimizer():
    config = Config(
        optimizer="sgd",
        momentum=0.8,
        weight_decay=2e-5,
        clipnorm=0.25,
        weight_averaging="ema",
        ema_momentum=0.9,
    )
    optimizer = optimization.make_optimizer(optimization.schedule_phases(config)[0], config)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    assert (optimizer.momentum, optimizer.weight_decay) == (0.8, 2e-5)
    assert (optimizer.global_clipnorm, optimizer.use_ema, optimizer.ema_momentum) == (
        0.25,
        True,
        0.9,
    )


def test_clipnorm_bounds_the_global_gradient_norm_of_a_step():
    def step(clipnorm):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="sigmoid")])
        phase = Phase(0, 1, "sgd", 1.0)  # plain SGD at rate 1: the update is the gradient
        optimization.compile_model(model, phase, config=Config(clipnorm=clipnorm))
        before = [np.array(w) for w in model.get_weights()]
        model.fit(np.full((4, 4), 100.0), np.zeros((4, 3)), batch_size=4, verbose=0)
        change = [np.array(w) - b for w, b in zip(model.get_weights(), before)]
        return np.sqrt(sum((c**2).sum() for c in change))

    assert step(0.0) > 1.0
    assert step(0.25) == pytest.approx(0.25, rel=1e-4)


def test_coupled_weight_decay_is_pytorchs_sgd_step():
    from emotion_keras.training.optimizers import CoupledWeightDecaySGD

    config = Config(optimizer="sgd", momentum=0.9, weight_decay=0.1, coupled_weight_decay=True)
    optimizer = optimization.make_optimizer(optimization.schedule_phases(config)[0], config)
    assert isinstance(optimizer, CoupledWeightDecaySGD) and optimizer.weight_decay is None
    variable = keras.Variable(np.array([1.0, -2.0], dtype=np.float32))
    optimizer.build([variable])
    w, buffer, lr = np.array([1.0, -2.0]), None, config.learning_rate
    for gradient in (np.array([0.5, 0.25]), np.array([-1.0, 0.5])):
        optimizer.apply([gradient.astype(np.float32)], [variable])
        # torch.optim.SGD(lr, momentum=0.9, nesterov=True, weight_decay=0.1).step():
        g = gradient + 0.1 * w
        buffer = g if buffer is None else 0.9 * buffer + g
        w = w - lr * (g + 0.9 * buffer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), w, rtol=1e-6)
    decoupled = optimization.make_optimizer(
        optimization.schedule_phases(config)[0], config.replace(coupled_weight_decay=False)
    )
    assert type(decoupled) is keras.optimizers.SGD and decoupled.weight_decay == 0.1


# Mixup.
def test_mixup_mixes_inputs_and_labels_alike_and_is_seeded():
    n, tags = 8, 5
    x = np.eye(n, dtype=np.float32)[:, :, None]  # row i says which track it is
    y = (np.arange(n)[:, None] % np.arange(2, 2 + tags)[None, :] == 0).astype(np.float32)
    batches = tf.data.Dataset.from_tensors((x, y)).repeat(4)

    def mixed(seed):
        return [(a.numpy(), b.numpy()) for a, b in mixup_batches(batches, 0.4, seed)]

    first = mixed(seed=3)
    weights = []
    for mixed_x, mixed_y in first:
        parts = mixed_x[..., 0]  # parts[i, j]: share of track j in mixed row i
        np.testing.assert_allclose(parts.sum(axis=1), 1, atol=1e-6)
        np.testing.assert_allclose(mixed_y, parts @ y, atol=1e-6)  # labels mixed as inputs
        lam = parts.max(axis=1)[parts.max(axis=1) < 1]  # rows paired with another track
        assert lam.size and np.allclose(lam, lam[0], atol=1e-6)  # one weight per batch
        weights.append(max(lam[0], 1 - lam[0]))
    assert len(set(np.round(weights, 6))) > 1, "a new weight every batch"
    again = mixed(seed=3)
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c) and np.testing.assert_array_equal(b, d)
    assert not np.array_equal(first[0][0], mixed(seed=4)[0][0])


def test_train_dataset_mixes_only_when_asked(melspec_corpus):
    from emotion_keras.data import pipeline

    data_dir, subset = melspec_corpus([40] * 6, n_bands=4)
    kwargs = dict(crop_frames=16, batch_size=6, n_bands=4, seed=0, shuffle=False)
    plain = next(iter(pipeline.train_dataset(data_dir, subset, **kwargs)))
    assert set(np.unique(plain[1].numpy())) <= {0.0, 1.0}
    soft = next(iter(pipeline.train_dataset(data_dir, subset, mixup_alpha=1.0, **kwargs)))
    assert soft[0].shape == plain[0].shape and soft[1].shape == plain[1].shape
    assert not set(np.unique(soft[1].numpy())) <= {0.0, 1.0}, "labels became soft"


def test_mixup_of_an_epoch_is_a_pure_function_of_seed_and_epoch(melspec_corpus):
    """A resumed run mixes as an uninterrupted one: epoch e's mixed batches are the same whether
    read after e earlier epochs in one pass or alone."""
    from emotion_keras.data import pipeline

    data_dir, subset = melspec_corpus([60] * 10, n_bands=4)
    kwargs = dict(crop_frames=16, batch_size=4, n_bands=4, seed=5, mixup_alpha=0.5)

    def batches(first_epoch, n_epochs):
        dataset = pipeline.train_dataset(
            data_dir, subset, first_epoch=first_epoch, n_epochs=n_epochs, **kwargs
        )
        return [(x.numpy(), y.numpy()) for x, y in dataset]

    in_one_pass = batches(0, 3)
    per_epoch = len(in_one_pass) // 3
    for epoch in (1, 2):
        alone = batches(epoch, 1)
        assert len(alone) == per_epoch
        for (x, y), (x1, y1) in zip(alone, in_one_pass[epoch * per_epoch :]):
            np.testing.assert_array_equal(x, x1)
            np.testing.assert_array_equal(y, y1)
    assert not np.array_equal(in_one_pass[0][1], in_one_pass[per_epoch][1])


# SpecAugment.
def test_spec_augment_masks_what_it_claims_and_only_in_training():
    layer = SpecAugment(time_masks=2, time_mask_frames=7, freq_masks=1, freq_mask_bands=3, seed=0)
    x = np.random.default_rng(0).normal(size=(16, 12, 40, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    keras.utils.set_random_seed(0)
    out = np.asarray(layer(x, training=True))[..., 0]
    means = x.mean(axis=(1, 2, 3))
    saw_masks = 0
    for i in range(len(x)):
        changed = out[i] != x[i, ..., 0]
        band_rows = np.flatnonzero(changed.all(axis=1))
        frame_cols = np.flatnonzero(changed.all(axis=0))
        # Every changed cell is the crop's mean and lies in a masked band or frame.
        np.testing.assert_allclose(out[i][changed], means[i], rtol=1e-5)
        expected = np.zeros_like(changed)
        expected[band_rows, :] = True
        expected[:, frame_cols] = True
        np.testing.assert_array_equal(changed, expected)
        assert len(band_rows) <= 3 and len(frame_cols) <= 2 * 7
        if band_rows.size and len(band_rows) == band_rows[-1] - band_rows[0] + 1:
            saw_masks += 1  # one frequency mask: a single stretch of bands
    assert saw_masks > 0


def test_spec_augment_goes_in_front_of_a_model_and_comes_out_for_export():
    from emotion_keras.models import build_model

    model = build_model("baseline5", (96, 1280, 1), 56)
    augmented = with_spec_augment(model, SpecAugment(1, 100, 1, 8, seed=0, name="spec_augment"))
    assert [layer.name for layer in augmented.layers[:3]] == ["melspec", "spec_augment", "input_bn"]
    for a, b in zip(model.get_weights(), augmented.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(1, 96, 1280, 1)).astype(np.float32)
    np.testing.assert_allclose(augmented(x), model(x), atol=1e-6)  # identity outside training
    plain = without_spec_augment(augmented)
    assert "spec_augment" not in [layer.name for layer in plain.layers]
    np.testing.assert_allclose(plain(x), model(x), atol=1e-6)


# Weight averaging.
def _bn_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="melspec")
    x = keras.layers.BatchNormalization(name="bn")(inputs)
    outputs = keras.layers.Dense(3, activation="sigmoid", name="tags")(x)
    return keras.Model(inputs, outputs)


def _fit_with_averaging(
    tmp_path, mode: str, epochs: int = 4, model=None, initial_epoch: int = 0, stop: int = 0
):
    """Trains `_bn_model` with the run's averaging callbacks around validation and checkpoint.

    Returns the model, the averaging object, the raw trainable weights at each epoch end and
    the trainable weights that validation saw at each epoch end.
    """
    config = Config(epochs=epochs, weight_averaging=mode, swa_fraction=0.5, ema_momentum=0.5)
    run = RunDir(tmp_path)
    x = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32) * 3 + 1
    y = (x[:, :3] > 1).astype(np.float32)
    weighting = averaging.WeightAveraging(config, run, lambda: [x[:16], x[16:]])
    if model is None:
        model = _bn_model()
        optimization.compile_model(model, Phase(0, epochs, "sgd", 0.3), config=config)
    else:
        weighting.restore(model)
    raw, seen = [], []

    class Raw(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raw.append([keras.ops.convert_to_numpy(w) for w in self.model.trainable_weights])

    def predict(m):
        seen.append([keras.ops.convert_to_numpy(w) for w in m.trainable_weights])
        return m.predict(x[:8], verbose=0)

    validation = ValidationAUC(predict, y[:8] > 0, "abc")
    checkpoint = ResumableCheckpoint(run, restart_best_at=weighting.start)
    callbacks = [Raw(), weighting.swap_in, validation, checkpoint]
    callbacks.append(weighting.swap_out)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=stop or epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    return model, weighting, raw, seen


def test_swa_validates_and_saves_the_mean_of_the_last_epochs_with_batch_norm_refreshed(tmp_path):
    model, weighting, raw, seen = _fit_with_averaging(tmp_path, "swa")
    assert weighting.start == 2  # the last half of 4 epochs
    for epoch in (0, 1):  # before SWA: the training weights
        for a, b in zip(raw[epoch], seen[epoch]):
            np.testing.assert_array_equal(a, b)
    mean = [(a + b) / 2 for a, b in zip(raw[2], raw[3])]
    for a, b in zip(mean, seen[3]):
        np.testing.assert_allclose(b, a, rtol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(raw[3], seen[3])), "averaged != raw"
    # The last checkpoint (and so best.keras, evaluation and export) holds the average, with
    # BatchNorm statistics recomputed for it over the refresh batches.
    saved = keras.saving.load_model(tmp_path / "checkpoints" / "epoch-0004.keras")
    for a, b in zip(mean, saved.trainable_weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(b), a, rtol=1e-6)
    x = np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32) * 3 + 1
    expected_mean = (x[:16].mean(axis=0) + x[16:].mean(axis=0)) / 2
    np.testing.assert_allclose(saved.get_layer("bn").moving_mean, expected_mean, rtol=1e-5)
    # Only averaged epochs compete for best.keras once SWA has started.
    assert RunDir(tmp_path).read_state()["best_epoch"] > weighting.start
    # Training goes on from the raw weights.
    for a, b in zip(raw[3], model.trainable_weights):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))


def test_swa_refreshes_batch_norm_only_for_validated_epochs():
    config = Config(epochs=4, weight_averaging="swa", swa_fraction=1.0, validate_every=3)
    passes = []
    weighting = averaging.WeightAveraging(config, RunDir("unused"), lambda: passes.append(1) or [])
    weighting.write = False
    model = _bn_model()
    optimization.compile_model(model, Phase(0, 4, "sgd", 0.1), config=config)
    callbacks = [weighting.swap_in, weighting.swap_out]
    x = np.ones((8, 4), np.float32)
    model.fit(x, x[:, :3], epochs=4, batch_size=8, verbose=0, callbacks=callbacks)
    assert weighting.count == 4 and len(passes) == 2  # after epochs 3 and 4 (the last)


def test_ema_validates_and_saves_the_optimizers_moving_average(tmp_path):
    model, _, raw, seen = _fit_with_averaging(tmp_path, "ema", epochs=2)
    ema = [keras.ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    saved = keras.saving.load_model(tmp_path / "checkpoints" / "epoch-0002.keras")
    for average, validated, stored in zip(ema, seen[1], saved.trainable_weights):
        np.testing.assert_allclose(validated, average, rtol=1e-6)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(stored), average, rtol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(raw[1], seen[1])), "averaged != raw"


@pytest.mark.parametrize("mode", ["swa", "ema"])
def test_averaging_state_survives_a_resume(tmp_path, mode):
    full, _, full_raw, full_seen = _fit_with_averaging(tmp_path / "full", mode, epochs=4)
    # The same run stopped after 3 epochs, then resumed from its checkpoint for the 4th.
    _fit_with_averaging(tmp_path / "cut", mode, epochs=4, stop=3)
    run = RunDir(tmp_path / "cut")
    assert [p.name for p in run.averaging_states()] == ["averaging-0003.npz"]
    resumed = _bn_model()
    config = Config(epochs=4, weight_averaging=mode, swa_fraction=0.5, ema_momentum=0.5)
    optimization.compile_model(resumed, Phase(0, 4, "sgd", 0.3), config=config)
    trainer.restore_last(resumed, run)
    _, weighting, raw, seen = _fit_with_averaging(
        tmp_path / "cut", mode, epochs=4, model=resumed, initial_epoch=3
    )
    assert weighting.count == (2 if mode == "swa" else 0)
    for a, b in zip(full_raw[3], raw[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    for a, b in zip(full_seen[3], seen[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    assert [p.name for p in run.averaging_states()] == ["averaging-0004.npz"]


def test_weight_averaging_is_refused_under_several_replicas(tmp_path):
    from emotion_keras.training import distribute

    workers = distribute.Workers(replicas=2)
    data = trainer._RunData(*([_subset(np.eye(4, 2, dtype=bool))] * 2), np.zeros(4), np.zeros(4))
    with pytest.raises(ConfigError, match=r"^weight_averaging swa: not supported under a multi"):
        trainer._recipe(
            Config(weight_averaging="swa", batch_size=2), RunDir(tmp_path), data, workers
        )


# Recipes.
def test_recipe_configurations_load_and_say_what_they_switch_on():
    config = load_experiment("cpjku2019-style-res18-m96")
    assert config.model == "res18" and config.mixup_alpha > 0
    assert config.weight_averaging == "swa"
    winner = load_experiment("winner2021-convs-m96")
    assert (winner.model, winner.crop_frames, winner.eval_mode) == ("convs", 224, "track")
    assert (winner.loss, winner.optimizer, winner.schedule) == ("weighted_bce", "sgd", "cosine")
    assert winner.coupled_weight_decay and winner.clipnorm == 0.25
    assert (winner.mixup_alpha, winner.weight_averaging) == (0.2, "swa")


@pytest.mark.slow
def test_every_option_on_trains_without_nan_and_exports_full_length_serving(tmp_path):
    from emotion_keras.serving.export import export_run

    root = tmp_path / "demo"
    demo.write_demo_dataset(root, n_train=32, n_validation=8, n_test=4)
    data_dir, meta_dir = demo.demo_paths(root)
    config = Config(
        model="baseline5",
        data_dir=str(data_dir),
        meta_dir=str(meta_dir),
        epochs=3,
        batch_size=16,  # the demo recipe's
        val_crops=2,
        test_crops=3,
        seed=1,
        loss="weighted_bce",
        optimizer="sgd",
        learning_rate=0.05,
        weight_decay=2e-5,
        coupled_weight_decay=True,
        clipnorm=0.25,
        schedule="cosine",
        warmup_epochs=1,
        mixup_alpha=0.2,
        time_masks=2,
        time_mask_frames=64,
        freq_masks=2,
        freq_mask_bands=8,
        weight_averaging="swa",
        swa_fraction=0.67,
    )
    run = tmp_path / "run"
    summary = training.train(config, run, verbose=0)
    history = pd.read_csv(run / "history.csv")
    assert summary["epochs"] == 3 and np.isfinite(history["loss"]).all()
    train_set = metadata.read_subset(meta_dir, 0, "train")
    written = pd.read_csv(run / "loss_weights.csv")
    np.testing.assert_allclose(
        written["pos_weight"], len(train_set) / np.maximum(train_set.labels.sum(axis=0), 1)
    )
    # The last epoch's checkpoint holds the SWA weights, not the training ones kept beside it.
    last = keras.saving.load_model(RunDir(run).epoch_checkpoint(3))
    assert "spec_augment" in [layer.name for layer in last.layers]
    with np.load(RunDir(run).averaging_state(3)) as state:
        raw = [state[f"raw_{i}"] for i in range(len(last.weights))]
    assert any(not np.allclose(a, keras.ops.convert_to_numpy(b)) for a, b in zip(raw, last.weights))
    out = export_run(run, tmp_path / "export")
    exported = json.loads((out / "export.json").read_text())
    assert exported["crop_frames"] == 1280
    served = tf.saved_model.load(str(out / "saved_model"))
    track = np.load(data_dir / train_set.melspec_paths[0])
    result = served.serve(tf.constant(track, tf.float32))
    probabilities = result["probabilities"].numpy()
    assert probabilities.shape == (56,) and np.isfinite(probabilities).all()
    keras_model = keras.saving.load_model(out / "model.keras")
    assert "spec_augment" not in [layer.name for layer in keras_model.layers]
    # The export is the best checkpoint, an averaged epoch (SWA averages epochs 2 and 3).
    assert RunDir(run).read_state()["best_epoch"] >= 2
    best = keras.saving.load_model(RunDir(run).best_checkpoint)
    assert len(best.weights) == len(keras_model.weights)
    for a, b in zip(best.weights, keras_model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
