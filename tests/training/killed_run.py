"""`emotion-keras train` that SIGKILLs itself at a chosen moment: the resume tests' subject.

    python -m tests.training.killed_run MOMENT EPOCH -- TRAIN FLAGS...

MOMENT is where in (1-based) epoch EPOCH the process dies, without any clean-up, as from
`kill -9`:
    `mid-epoch`         after the epoch's first training step;
    `checkpoint-write`  while its checkpoint is written (the temporary file is there, not yet
                        renamed, the commit not yet made);
    `after-commit`      right after `state.json` commits it (before the copy to `best.keras` and
                        the removal of the previous checkpoint);
    `none`              never (the uninterrupted run).

TensorFlow's op determinism is on, as the bit-exact comparison needs. A chosen moment instead of
a timed external kill: the point of the tests is what each moment leaves behind.
"""

from __future__ import annotations

import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(moment: str, epoch: int) -> None:
    from emotion_keras.training import callbacks

    if moment == "mid-epoch":
        step_end = callbacks.StopOnNaN.on_train_batch_end

        def on_train_batch_end(self, batch, logs=None):
            step_end(self, batch, logs)
            if self.epoch + 1 == epoch:
                die()

        callbacks.StopOnNaN.on_train_batch_end = on_train_batch_end
    elif moment == "checkpoint-write":
        original_save = callbacks.ResumableCheckpoint._save

        def _save(self, path):
            if path != self.run.epoch_checkpoint(epoch):
                return original_save(self, path)
            with callbacks.atomic_path(path) as tmp:
                self.model.save(tmp)
                die()

        callbacks.ResumableCheckpoint._save = _save
    elif moment == "after-commit":
        write = callbacks.atomic_write_text

        def atomic_write_text(path, text):
            write(path, text)
            if path.name == "state.json" and f'"epoch": {epoch},' in text:
                die()

        callbacks.atomic_write_text = atomic_write_text
    elif moment != "none":
        raise SystemExit(f"unknown moment {moment!r}")


def main() -> int:
    moment, epoch, separator, *flags = sys.argv[1:]
    assert separator == "--"
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    arm(moment, int(epoch))
    from emotion_keras.cli import main as cli

    return cli(["train", *flags])


if __name__ == "__main__":
    sys.exit(main())
