"""get_dataset: names, the parts it returns, scoring and bad input."""
import pytest
import torch

from graphequi.datasets import DatasetSplits, dataset_names, get_dataset


def test_unknown_names_list_the_available_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'qm9'.*zinc.*ogbg-molhiv.*MUTAG.*count-4cycle.*rmd17-aspirin"):
        get_dataset("qm9", tmp_path)
    assert len(dataset_names()) == len(set(dataset_names())) == 17 + 10   # 10 rMD17 molecules


def test_split_scoring_and_bad_predictions():
    regression = DatasetSplits("count-triangle", [], [], [], task_type="regression", metric="mae",
                               num_tasks=1, result_name="x")
    y = torch.tensor([[1.0], [2.0], [4.0]])
    assert regression.evaluate(y, torch.tensor([[1.0], [3.0], [2.0]])) == pytest.approx(1.0)
    assert not regression.higher_is_better
    multiclass = DatasetSplits("MUTAG", [], [], [], task_type="multiclass classification",
                               metric="accuracy", num_tasks=2, result_name="x")
    assert multiclass.evaluate(torch.tensor([0, 1, 1, 0]),
                               torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 1.0], [1.0, 0.0]])) == 0.75
    assert multiclass.higher_is_better
    with pytest.raises(ValueError, match="3 rows"):
        regression.evaluate(y, torch.zeros(2, 1))


def test_tu_names_are_case_insensitive_and_folds_checked(shared_data, tmp_path):
    source = shared_data("tu_gin_format", "MUTAG").parent.parent
    parts = get_dataset("mUtAg", tmp_path, source=source, fold=9, log=False)
    assert parts.name == "MUTAG" and parts.num_tasks == 2 and len(parts.test) == 18
    with pytest.raises(ValueError, match="fold"):
        get_dataset("MUTAG", tmp_path, source=source, fold=-1, log=False)
