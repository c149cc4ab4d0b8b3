import pytest
import torch
from torch import nn

from edgessl.train.ema import EncoderEMA


def test_average_warms_up_then_follows_the_decay_and_copies_integer_buffers():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EncoderEMA(net, decay=0.5)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net[1].num_batches_tracked += 3
    ema.update(net)  # first update: decay min(0.5, 1/10) = 0.1
    torch.testing.assert_close(ema.module[0].weight, start + 0.9)
    assert int(ema.module[1].num_batches_tracked) == 3
    with torch.no_grad():
        net[0].weight.add_(1.0)
    for _ in range(20):  # (1 + n) / (10 + n) passes 0.5 at once: decay 0.5 from here on
        ema.update(net)
    torch.testing.assert_close(ema.module[0].weight, start + 2.0)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_state_round_trips_and_a_bad_decay_is_refused():
    net = nn.Linear(3, 1)
    ema = EncoderEMA(net, decay=0.9)
    ema.update(net)
    other = EncoderEMA(nn.Linear(3, 1), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1
    torch.testing.assert_close(other.module.weight, ema.module.weight)
    with pytest.raises(ValueError, match="encoder_ema"):
        EncoderEMA(net, decay=1.0)
