"""Precise BN: batch-norm statistics re-estimated as a plain average over training batches."""
import pytest
import torch

from graphequi.nn.ppgn import PairBatchNorm
from graphequi.train.precise_bn import recompute_batch_norm_statistics


def test_statistics_are_the_plain_average_of_the_batch_statistics_with_dropout_off():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.9), torch.nn.BatchNorm1d(4, momentum=0.3))
    model.train()
    batches = [torch.randn(n, 3) * (1 + k) + k for k, n in enumerate([5, 9, 17, 4])]
    used = recompute_batch_norm_statistics(model, batches, num_batches=3)
    assert used == 3
    hidden = [model[0](x) for x in batches[:3]]  # dropout was off during the pass
    bn = model[2]
    torch.testing.assert_close(bn.running_mean, torch.stack([h.mean(0) for h in hidden]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([h.var(0) for h in hidden]).mean(0))
    assert model.training and model[1].training and bn.momentum == 0.3


def test_pair_batch_norm_statistics_average_the_masked_batches():
    torch.manual_seed(0)
    norm = PairBatchNorm(2).eval()
    batches = []
    for n in (3, 5):
        mask = torch.ones(2, n, dtype=torch.bool)
        mask[1, -1] = False
        batches.append((torch.randn(2, 2, n, n) + n, mask))
    recompute_batch_norm_statistics(norm, batches, num_batches=2, forward=lambda m, b: m(*b))
    means = []
    for x, mask in batches:
        pairs = (mask.unsqueeze(2) & mask.unsqueeze(1))
        means.append(x.permute(1, 2, 3, 0)[pairs].mean(0))
    torch.testing.assert_close(norm.bn.running_mean, torch.stack(means).mean(0))
    assert not norm.training


def test_no_batches_is_an_error_and_leaves_the_statistics_alone():
    bn = torch.nn.BatchNorm1d(2)
    bn.running_mean.fill_(3.0)
    with pytest.raises(ValueError, match="no batches"):
        recompute_batch_norm_statistics(bn, [], num_batches=4)
    assert bn.running_mean.eq(3.0).all()
    with pytest.raises(ValueError, match="num_batches must be >= 1"):
        recompute_batch_norm_statistics(bn, [torch.randn(4, 2)], num_batches=0)
    assert recompute_batch_norm_statistics(torch.nn.Linear(2, 2), [torch.randn(4, 2)], 1) == 0
