"""A local training loop for python_participant_test.py's straggler case: it never finishes on
its own (bounded at 120 s); it stops only when the coordinator cancels the task."""
import time


def train(ctx):
    end = time.time() + 120
    while time.time() < end:
        ctx.check_cancelled()
        time.sleep(0.05)
    raise RuntimeError("python_slow_loop: not cancelled within 120 s")
