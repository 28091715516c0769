"""`python -m emotion_keras` is the `emotion-keras` command."""

import sys

from emotion_keras.cli import main

sys.exit(main())
