"""PairBatchNorm after convert_sync_batchnorm: 2 gloo processes, each with half
of the batch, give the outputs, gradients and running statistics of 1 process
with the whole batch."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from graphequi.nn.ppgn import PairBatchNorm
from graphequi.testing import free_port


def _batch():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 5, generator=gen, dtype=torch.double) * 2 + 1
    mask = torch.rand(4, 5, generator=gen) < 0.7
    mask[:, 0] = True
    return x, mask


def _fresh_norm():
    torch.manual_seed(0)
    norm = PairBatchNorm(3).double().train()
    with torch.no_grad():
        norm.bn.weight.uniform_(0.5, 2), norm.bn.bias.uniform_(-1, 1)
    return norm


def _worker(rank: int, port: int, queue) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        norm = torch.nn.SyncBatchNorm.convert_sync_batchnorm(_fresh_norm())
        assert isinstance(norm.bn, torch.nn.SyncBatchNorm)
        x, mask = _batch()
        part = slice(2 * rank, 2 * rank + 2)
        xs = x[:, part].clone().requires_grad_()
        out = norm(xs, mask[part])
        (out * torch.arange(out.numel(), dtype=out.dtype).view(out.shape).cos()).sum().backward()
        # numpy copies travel by value: a torch tensor would be sent as a shared-memory handle that
        # the parent can only open while this process is alive, which races with its exit
        queue.put((rank, *(t.detach().numpy().copy() for t in (
            out, xs.grad, norm.bn.weight.grad, norm.bn.running_mean, norm.bn.running_var))))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")
def test_synchronised_pair_batch_norm_matches_one_process():
    port = free_port()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(rank, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    received = [queue.get(timeout=120) for _ in procs]
    results = {r[0]: [torch.from_numpy(a) for a in r[1:]] for r in received}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    norm = _fresh_norm()
    x, mask = _batch()
    x.requires_grad_()
    out = norm(x, mask)
    weights = torch.cat([torch.arange(out[:, 2 * r:2 * r + 2].numel(), dtype=out.dtype)
                         .view(out[:, 2 * r:2 * r + 2].shape).cos() for r in range(2)], dim=1)
    (out * weights).sum().backward()
    for rank in range(2):
        part_out, part_grad, weight_grad, running_mean, running_var = results[rank]
        torch.testing.assert_close(part_out, out[:, 2 * rank:2 * rank + 2].detach())
        torch.testing.assert_close(part_grad, x.grad[:, 2 * rank:2 * rank + 2])
        torch.testing.assert_close(running_mean, norm.bn.running_mean)
        torch.testing.assert_close(running_var, norm.bn.running_var)
    # DDP averages parameter gradients over processes; summed, they are the full-batch ones
    torch.testing.assert_close(results[0][2] + results[1][2], norm.bn.weight.grad)
