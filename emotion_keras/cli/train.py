"""`emotion-keras train`: a named configuration plus overrides, trained in a run directory."""

from __future__ import annotations

import argparse
import dataclasses
import json

from emotion_keras.cli import add_command
from emotion_keras.config import Config

#: One-line help per configuration field (the full story is `Config`'s docstring). Every field
#: has one; a test checks.
FIELD_HELP = {
    "model": "architecture (emotion-keras models lists them)",
    "data_dir": "melspec root or packed .h5 of the real dataset (omit for the demo dataset)",
    "meta_dir": "MTG-Jamendo metadata folder (splits/, tags/)",
    "split": "official split 0-4 (MediaEval 2019 used 0)",
    "n_bands": "mel bands of every melspec (the dataset's 96)",
    "crop_frames": "frames per training crop (paper: 1280, 27.3 s)",
    "batch_size": "global batch size over all replicas (paper: 64)",
    "val_crops": "regular crops per track when validating (paper: 10)",
    "test_crops": "regular crops per track when testing and in exports (paper: 20)",
    "epochs": "epochs to train (resuming a run may raise it)",
    "learning_rate": "learning rate of the paper schedule, peak of cosine (paper: 0.001)",
    "dropout": "dropout rate before the output layer (paper: 0.5; 0 removes it)",
    "schedule": "paper (constant rate), original (Adam, then SGD with restarts from the best "
    "weights), or cosine (warm-up, then cosine decay to 0)",
    "validate_every": "validate every N epochs (and after the last)",
    "val_cache_mb": "keep validation crops in N MB of RAM, else on disk in the run "
    "directory (0: read them every time)",
    "monitor": "validation figure that picks the best checkpoint (default val_pr_auc_macro)",
    "early_stopping_patience": "stop after N validated epochs without improvement (0: never)",
    "seed": "fixes initialisation, shuffling and crops",
    "train_tracks": "train on the first N tracks only (0: all), for quick runs",
    "val_tracks": "validate on the first N tracks only (0: all)",
    "mixed_precision": "mixed precision (float16 on GPU, bfloat16 otherwise)",
    "jit_compile": "compile the training step with XLA",
    "strategy": "tf.distribute strategy: auto (mirrored with several GPUs), default, mirrored, "
    "multiworker (set TF_CONFIG in every worker)",
    # Beyond the paper (README "Beyond the paper"); the defaults are the paper's behaviour.
    "loss": "bce (paper), focal, or weighted_bce (positives weighted 1/p from the training split)",
    "focal_alpha": "focal loss: weight of positives (default 0.25)",
    "focal_gamma": "focal loss: focusing exponent (default 2)",
    "optimizer": "adam (paper) or sgd with Nesterov momentum; schedules paper and cosine",
    "momentum": "SGD's Nesterov momentum (default 0.9)",
    "weight_decay": "weight decay, decoupled as Keras's (default 0: none)",
    "coupled_weight_decay": "SGD: add the decay to the gradient, as PyTorch's SGD does",
    "clipnorm": "clip the global gradient norm to this (default 0: no clipping)",
    "warmup_epochs": "schedule cosine: linear warm-up epochs before the cosine decay to 0",
    "mixup_alpha": "mixup of training batches, weight ~ Beta(a, a) (default 0: off)",
    "time_masks": "SpecAugment: time masks per training crop (default 0: off)",
    "time_mask_frames": "SpecAugment: most frames one time mask covers",
    "freq_masks": "SpecAugment: frequency masks per training crop (default 0: off)",
    "freq_mask_bands": "SpecAugment: most bands one frequency mask covers",
    "weight_averaging": "none, swa (last swa_fraction of the epochs, BatchNorm refreshed) or "
    "ema; evaluation and export use the averaged weights",
    "swa_fraction": "SWA: fraction of the epochs, the last ones, averaged (default 0.2)",
    "ema_momentum": "EMA: momentum per step (default 0.99)",
    "time_pooling": "model (its own pooling), or mean/max over time so that a paper model takes "
    "crops of any length",
    "eval_mode": "crops (val_crops/test_crops regular crops), windows (sliding over the whole "
    "track) or track (the whole track in one pass: convs) for validation, evaluate and export",
    "window_hop_frames": "frames between sliding windows (0: crop_frames)",
}


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        run_train,
        help="train a model (resumes its run directory)",
        description="Train from a named configuration (emotion_keras/experiments/, also at "
        "experiments/ in a checkout) plus overrides. Running the same command again "
        "resumes after the last completed epoch.",
    )
    parser.add_argument(
        "--config",
        default="demo",
        metavar="NAME",
        help="a named configuration (vgg6, ...) or a JSON file (default: demo)",
    )
    parser.add_argument("--run-dir", help="run directory (default: runs/CONFIG-MODEL-splitN)")
    overrides = parser.add_argument_group("configuration overrides (by field name)")
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            overrides.add_argument(
                flag,
                dest=field.name,
                action="store_const",
                const="true",
                help=FIELD_HELP[field.name],
            )
        else:
            overrides.add_argument(
                flag, dest=field.name, metavar="VALUE", help=FIELD_HELP[field.name]
            )
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")


def run_train(args: argparse.Namespace) -> int:
    from emotion_keras.cli.progress import ProgressLine
    from emotion_keras.config import field_names, load_experiment
    from emotion_keras.training import default_run_dir, train

    overrides = {
        name: getattr(args, name) for name in field_names() if getattr(args, name) is not None
    }
    config = load_experiment(args.config, **overrides)
    run_dir = args.run_dir or default_run_dir(args.config, config)
    summary = train(config, run_dir, progress=ProgressLine("train"))
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0
