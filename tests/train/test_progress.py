import re
import time

from edgessl.train.progress import Progress


def _eta_minutes(text: str) -> float:
    return float(re.search(r"eta\s+(-?[\d.]+) min", text).group(1))


def test_eta_is_the_time_budget_left_when_the_steps_would_take_longer(capsys):
    bounded = Progress(total_steps=100_000, start_step=0, batch_size=64, every=1, seconds_left=90.0)
    time.sleep(0.05)  # one step of 64 images in 0.05 s: 100,000 steps would take ~80 min
    bounded.advance("")
    assert 1.4 <= _eta_minutes(capsys.readouterr().out) <= 1.5
    unbounded = Progress(total_steps=100_000, start_step=0, batch_size=64, every=1)
    time.sleep(0.05)
    unbounded.advance("")
    assert _eta_minutes(capsys.readouterr().out) > 60


def test_eta_never_goes_below_zero_past_the_budget(capsys):
    late = Progress(total_steps=10, start_step=0, batch_size=64, every=1, seconds_left=0.0)
    late.advance("")
    assert _eta_minutes(capsys.readouterr().out) == 0.0
