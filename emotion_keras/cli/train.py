"""`emotion-keras train`: a named configuration plus overrides, trained in a run directory."""

from __future__ import annotations

import argparse
import dataclasses
import json

from emotion_keras.config import Config

# One-line help per configuration field (the full story is Config's docstring).
FIELD_HELP = {
    "model": "architecture (emotion-keras models lists them)",
    "data_dir": "melspec root of the real dataset (omit for the demo dataset)",
    "meta_dir": "MTG-Jamendo metadata folder (splits/, tags/)",
    "split": "official split 0-4",
    "epochs": "epochs to train (resuming a run may raise it)",
    "learning_rate": "Adam learning rate of the paper schedule",
    "schedule": "paper (Adam) or original (Adam, then SGD with restarts from the best weights)",
    "seed": "fixes initialisation, shuffling and crops",
    "strategy": "tf.distribute strategy: auto (mirrored with several GPUs), default, mirrored, "
                "multiworker (set TF_CONFIG in every worker)",
    "dropout": "dropout rate before the output layer (paper: 0.5)",
    "batch_size": "global batch size over all replicas (paper: 64)",
    "mixed_precision": "mixed precision (float16 on GPU, bfloat16 otherwise)",
    "jit_compile": "compile the training step with XLA",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model (resumes its run directory)",
        description="Train from a named configuration in experiments/ plus overrides. Running "
                    "the same command again resumes after the last completed epoch.")
    parser.add_argument("--config", default="demo", metavar="NAME",
                        help="experiments/NAME.json or a JSON path (default: demo)")
    parser.add_argument("--run-dir", help="run directory (default: runs/CONFIG-MODEL-splitN)")
    overrides = parser.add_argument_group("configuration overrides (by field name)")
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            overrides.add_argument(flag, dest=field.name, action="store_const", const="true",
                                   help=FIELD_HELP.get(field.name, "enable"))
        else:
            overrides.add_argument(flag, dest=field.name, metavar="VALUE",
                                   help=FIELD_HELP.get(field.name, "override"))
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from emotion_keras.config import field_names, load_experiment
    from emotion_keras.training import default_run_dir, train

    overrides = {name: getattr(args, name) for name in field_names()
                 if getattr(args, name) is not None}
    config = load_experiment(args.config, **overrides)
    run_dir = args.run_dir or default_run_dir(args.config, config)
    summary = train(config, run_dir)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0
