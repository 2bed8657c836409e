"""Local training loops for python_participant_test.py's fault cases.
train: never finishes on its own (bounded at 120 s); it stops only when the coordinator cancels
  the task (the straggler case).
train_after_pause: waits 2 s (cancellable), then trains like the C++ participant: the test kills
  the coordinator while round 2 is in that pause, so round 2 cannot complete before the kill.
train_scaled: a Byzantine participant whose update is 1000x the global weights (robust strategies)."""
import time

import conflux_participant  # worker/python is on sys.path when the participant loads this file


def train(ctx):
    end = time.time() + 120
    while time.time() < end:
        ctx.check_cancelled()
        time.sleep(0.05)
    raise RuntimeError("python_slow_loop: not cancelled within 120 s")


def train_after_pause(ctx):
    end = time.time() + 2
    while time.time() < end:
        ctx.check_cancelled()
        time.sleep(0.05)
    return conflux_participant.default_train(ctx)


def train_scaled(ctx):
    """A Byzantine participant (the robust-strategy case): sends 1000x the global weights."""
    import torch
    with torch.no_grad():
        for p in ctx.model.parameters():
            p.mul_(1000.0)
    return {"steps": 1, "train_loss": 1.0}
