import numpy as np

from edgessl.data.splits import label_fraction_indices


def test_fraction_is_exact_per_class_and_seeded():
    labels = np.repeat(np.arange(10), 500)
    idx = label_fraction_indices(labels, 0.2, seed=0)
    assert np.bincount(labels[idx]).tolist() == [100] * 10
    assert len(np.unique(idx)) == len(idx)
    np.testing.assert_array_equal(idx, label_fraction_indices(labels, 0.2, seed=0))
    assert not np.array_equal(idx, label_fraction_indices(labels, 0.2, seed=1))
