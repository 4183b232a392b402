import torch

from graphequi.train.sampling import BucketBatchSampler


def test_bucketed_batches_partition_the_data_and_split_over_processes():
    gen = torch.Generator().manual_seed(0)
    sizes = torch.randint(5, 40, (203,), generator=gen).tolist()
    single = BucketBatchSampler(sizes, batch_size=16, seed=3)
    single.set_epoch(2)
    batches = list(single)
    assert len(batches) == len(single)
    assert sorted(i for b in batches for i in b) == list(range(203))
    ranks = [BucketBatchSampler(sizes, batch_size=16, num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(2)
    per_rank = [list(s) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0])
    # padded to 204 = a multiple of 2 processes; every step has equal halves
    for global_batch, a, b in zip(ranks[0].global_batches(), *per_rank):
        assert len(a) == len(b) and sorted(a + b) == sorted(global_batch)
    covered = sorted(i for a in per_rank for b in a for i in b)
    assert len(covered) == 204 and set(covered) == set(range(203))


def test_one_process_sees_the_global_batches_of_two():
    sizes = torch.randint(5, 40, (96,), generator=torch.Generator().manual_seed(2)).tolist()
    one = BucketBatchSampler(sizes, batch_size=8, seed=1, bucket=4)
    two = [BucketBatchSampler(sizes, batch_size=8, num_replicas=2, rank=r, seed=1, bucket=4) for r in (0, 1)]
    for s in [one] + two:
        s.set_epoch(7)
    for whole, a, b in zip(one, *two):
        assert whole[0::2] == a and whole[1::2] == b


def test_bucketing_reduces_padding_and_depends_only_on_seed_and_epoch():
    gen = torch.Generator().manual_seed(1)
    sizes = torch.randint(9, 38, (1000,), generator=gen).tolist()
    s = BucketBatchSampler(sizes, batch_size=64, seed=0)
    s.set_epoch(5)
    first = list(s)
    s.set_epoch(6)
    assert list(s) != first
    again = BucketBatchSampler(sizes, batch_size=64, seed=0)
    again.set_epoch(5)
    assert list(again) == first
    padded_cost = sum(len(b) * max(sizes[i] for i in b) ** 2 for b in first)
    perm = torch.randperm(1000, generator=gen).tolist()
    random_cost = sum(64 * max(sizes[i] for i in perm[k:k + 64]) ** 2 for k in range(0, 1000, 64))
    assert padded_cost < 0.6 * random_cost
