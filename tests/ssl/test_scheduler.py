from edgessl.recipe import SchedulerConfig
from edgessl.ssl.scheduler import DynamicCorruptionScheduler


def test_solved_task_gets_more_corruption_and_weights_stay_normalised():
    cfg = SchedulerConfig(interval=10, ema_decay=0.5, ratio_step=0.05, mask_bounds=(0.1, 0.5), rot_bounds=(0.1, 0.3), max_total=0.7)
    sched = DynamicCorruptionScheduler(cfg, mask_ratio=0.3, rot_ratio=0.2)
    for step in range(200):
        rot = 1.0 if step < 10 else 0.01  # rotation solved at once; reconstruction stalls
        assert not sched.update(1.0, rot) or True
    s = sched.state
    assert s.rot_ratio == 0.3  # pushed up to its bound
    assert abs(s.lambda_rec + s.lambda_rot - 2) < 1e-6
    assert s.lambda_rec > s.lambda_rot  # the lagging task is weighted up
    assert s.mask_ratio + s.rot_ratio <= cfg.max_total + 1e-9
    assert len(sched.history) > 1


def test_state_round_trips():
    cfg = SchedulerConfig(interval=2)
    a = DynamicCorruptionScheduler(cfg, 0.3, 0.2)
    for _ in range(5):
        a.update(1.0, 0.5)
    b = DynamicCorruptionScheduler(cfg, 0.0, 0.0)
    b.load_state_dict(a.state_dict())
    assert b.state == a.state and b.history == a.history


def test_disabled_scheduler_keeps_ratios():
    sched = DynamicCorruptionScheduler(SchedulerConfig(enabled=False, interval=2), 0.3, 0.2)
    for _ in range(20):
        sched.update(1.0, 0.0001)
    assert (sched.state.mask_ratio, sched.state.rot_ratio) == (0.3, 0.2)
