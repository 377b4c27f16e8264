"""A training command that kills its process (SIGKILL, no clean-up) right after writing the checkpoint of a step.

    python tests/kill_after_checkpoint.py STEP arcaudio-arguments...    (also under torchrun: rank 0 dies)
"""

import os
import signal
import sys

import arcaudio.training.loop as loop
from arcaudio.cli import main

kill_at, save = int(sys.argv[1]), loop.save_checkpoint


def save_then_die(run_dir, stage, config, step, skipped, *rest, **options):
    save(run_dir, stage, config, step, skipped, *rest, **options)
    if step == kill_at and options.get("write", True):  # the process that wrote it
        os.kill(os.getpid(), signal.SIGKILL)


loop.save_checkpoint = save_then_die
sys.exit(main(sys.argv[2:]))
