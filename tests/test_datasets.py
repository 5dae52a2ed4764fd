"""Datasets, shards and batch streams of simulator.learning.datasets: shapes, determinism, caching,
errors naming the file and key, and the invariants of splitting (every sample once)."""

import random

import numpy as np
import pytest

from simulator.learning import datasets
from simulator.learning.datasets import BatchStream, load_dataset, shard_indices
from simulator.utils.errors import InputError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Never touch the user's ~/.cache in tests."""
    monkeypatch.setenv("SGDSIM_CACHE", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- digits
def test_digits_shapes_range_and_stratified_split():
    data = load_dataset()                                   # the default
    assert data.name == "digits" and data.num_classes == 10 and data.input_dim == 64
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.y_train.dtype == np.int64 and data.x_train.dtype == np.float64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert np.bincount(data.y_test, minlength=10).min() >= 35    # ~36 per class: stratified
    assert "scikit-learn" in data.source


def test_digits_split_is_seeded():
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), \
        load_dataset("digits", seed=4)
    assert (a.x_train == b.x_train).all() and (a.y_test == b.y_test).all()
    assert not (a.y_train == c.y_train).all()


def test_digits_split_is_cached_bit_for_bit(tmp_path, monkeypatch):
    first = load_dataset("digits", seed=5)                   # split by scikit-learn, stored
    files = list((tmp_path / "cache").glob("digits-*-nall-seed5.npz"))
    assert len(files) == 1

    def no_split(*args):
        raise AssertionError("the second call must load the cache")
    monkeypatch.setattr(datasets, "_split_digits", no_split)
    again = load_dataset("digits", seed=5)
    assert "cached in" in again.source
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a, b = getattr(first, name), getattr(again, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    monkeypatch.undo()
    from sklearn.datasets import load_digits                 # and it is scikit-learn's split
    from sklearn.model_selection import train_test_split
    bunch = load_digits()
    x_train, _, y_train, _ = train_test_split(bunch.data / 16.0, bunch.target, train_size=1437,
                                              test_size=360, stratify=bunch.target, random_state=5)
    assert x_train.tobytes() == again.x_train.tobytes() and (y_train == again.y_train).all()


def test_digits_subset_and_limit():
    for n in (50, 500, 1796):
        small = load_dataset("digits", n_samples=n)
        assert len(small.y_train) + len(small.y_test) == n
        assert len(np.unique(small.y_test)) == 10
    for n in (49, 5000):
        with pytest.raises(InputError, match="ask for 50 to 1797"):
            load_dataset("digits", n_samples=n)


# --------------------------------------------------------------------------- mnist1d
def test_mnist1d_generated_deterministically_and_cached(tmp_path, monkeypatch):
    np.random.seed(123)
    random.seed(123)
    before = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    data = load_dataset("mnist1d", n_samples=2000, seed=0)
    assert (np.random.random(), random.random()) == before     # global RNGs left untouched
    assert data.x_train.shape == (1600, 40) and data.x_test.shape == (400, 40)
    assert data.num_classes == 10 and set(np.unique(data.y_train)) == set(range(10))
    files = list((tmp_path / "cache").glob("mnist1d-*-n2000-seed0.npz"))
    assert len(files) == 1

    def no_generation(*args):
        raise AssertionError("the second call must load the cache")
    monkeypatch.setattr(datasets, "_generate_mnist1d", no_generation)
    again = load_dataset("mnist1d", n_samples=2000, seed=0)
    assert "cached in" in again.source
    assert (again.x_train == data.x_train).all() and (again.y_test == data.y_test).all()
    monkeypatch.undo()

    files[0].unlink()                                          # regenerate: same numbers
    fresh = load_dataset("mnist1d", n_samples=2000, seed=0)
    assert (fresh.x_train == data.x_train).all() and (fresh.y_train == data.y_train).all()
    other = load_dataset("mnist1d", n_samples=2000, seed=1)
    assert not np.array_equal(other.x_train, data.x_train)


def test_mnist1d_any_sample_count_and_corrupt_cache(tmp_path):
    data = load_dataset("mnist1d", n_samples=1234, seed=0)
    assert len(data.y_train) == 987 and len(data.y_test) == 247     # 80/20 of exactly 1234
    (file,) = (tmp_path / "cache").glob("mnist1d-*-n1234-seed0.npz")
    file.write_bytes(b"not a zip")
    again = load_dataset("mnist1d", n_samples=1234, seed=0)         # regenerated
    assert (again.x_train == data.x_train).all()


# --------------------------------------------------------------------------- teacher
def test_teacher_dataset_defaults_options_and_determinism():
    data = load_dataset("teacher")
    assert data.x_train.shape == (8000, 32) and data.x_test.shape == (2000, 32)
    assert np.bincount(data.y_train, minlength=10).min() > 200       # no class vanishes
    small = load_dataset("teacher", n_samples=500, input_dim=8, num_classes=3, seed=2)
    assert small.x_train.shape == (400, 8) and small.num_classes == 3
    assert (small.y_train == load_dataset("teacher", n_samples=500, input_dim=8,
                                          num_classes=3, seed=2).y_train).all()
    with pytest.raises(InputError, match="teacher"):
        load_dataset("digits", input_dim=8)


# --------------------------------------------------------------------------- npz
def _save(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_round_trip_flattens_images_and_accepts_integral_float_labels(tmp_path):
    rng = np.random.default_rng(0)
    file = _save(tmp_path / "mine.npz", x=rng.random((30, 4, 4)), y=rng.integers(0, 3, 30),
                 x_test=rng.random((10, 4, 4)), y_test=np.array([0., 1., 2.] * 3 + [1.]))
    data = load_dataset(f"npz:{file}")
    assert data.x_train.shape == (30, 16) and data.x_test.shape == (10, 16)
    assert data.y_test.dtype == np.int64 and data.num_classes == 3
    assert load_dataset(path=file).name == f"npz:{file}"


@pytest.mark.parametrize("change,key,text", [
    ({"y_test": None}, "y_test", "missing key 'y_test'"),
    ({"y": np.zeros((30, 2), int)}, "y", "must have shape (30,)"),
    ({"y": np.zeros(29, int)}, "y", "must have shape (30,)"),
    ({"y": np.full(30, 0.5)}, "y", "labels must be integers"),
    ({"y_test": np.array(["a"] * 10)}, "y_test", "labels must be integers"),
    ({"y": -np.ones(30, int)}, "y", "must be >= 0"),
    ({"x_test": np.zeros((10, 5))}, "x_test", "has 5 features per sample but x has 4"),
    ({"x": np.zeros(30)}, "x", "(N, d)"),
    ({"x": np.full((30, 4), np.nan)}, "x", "NaN"),
])
def test_npz_errors_name_the_file_and_key(tmp_path, change, key, text):
    arrays = dict(x=np.zeros((30, 4)), y=np.arange(30) % 3, x_test=np.zeros((10, 4)),
                  y_test=np.arange(10) % 3)
    arrays.update(change)
    file = _save(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(InputError) as err:
        load_dataset(f"npz:{file}")
    assert err.value.file == file and err.value.field == key
    assert str(err.value).startswith(f"{file}: {key}: ") and text in str(err.value)


def test_npz_missing_or_unreadable_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_dataset(path=tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_text("hello")
    with pytest.raises(InputError, match="not a readable .npz"):
        load_dataset(path=tmp_path / "junk.npz")


def test_unknown_dataset_suggests_a_name():
    with pytest.raises(InputError) as err:
        load_dataset("mnist-1d")
    assert "did you mean 'mnist1d'?" in str(err.value) and err.value.field == "dataset"


# --------------------------------------------------------------------------- shards
def _check_partition(shards, n):
    everything = np.concatenate(shards)
    assert len(everything) == n and (np.sort(everything) == np.arange(n)).all()
    assert all(len(s) > 0 for s in shards)


def test_iid_shards_cover_every_sample_once_in_near_equal_parts():
    y = np.arange(103) % 7
    shards = shard_indices(y, 10, seed=0)
    _check_partition(shards, 103)
    assert {len(s) for s in shards} == {10, 11}
    assert all((a == b).all() for a, b in zip(shards, shard_indices(y, 10, seed=0)))
    assert not all((a == b).all() for a, b in zip(shards, shard_indices(y, 10, seed=1)))


@pytest.mark.parametrize("alpha,workers", [(0.05, 50), (0.5, 16), (100.0, 8)])
def test_dirichlet_shards_cover_every_sample_once_and_are_non_empty(alpha, workers):
    y = load_dataset("digits").y_train
    shards = shard_indices(y, workers, seed=0, non_iid_alpha=alpha)
    _check_partition(shards, len(y))
    assert all((a == b).all() for a, b in
               zip(shards, shard_indices(y, workers, seed=0, non_iid_alpha=alpha)))


def test_small_alpha_skews_the_classes_each_worker_sees():
    y = load_dataset("digits").y_train
    def classes_per_worker(shards):
        # classes making up 95% of each worker's samples, averaged over workers
        counts = [np.sort(np.bincount(y[s], minlength=10))[::-1] for s in shards]
        return np.mean([np.searchsorted(np.cumsum(c) / c.sum(), 0.95) + 1 for c in counts])
    skewed = classes_per_worker(shard_indices(y, 8, seed=0, non_iid_alpha=0.1))
    iid = classes_per_worker(shard_indices(y, 8, seed=0))
    assert skewed < 5 <= iid


def test_shard_errors():
    with pytest.raises(InputError, match="cannot split 3 samples across 4 workers"):
        shard_indices(np.zeros(3, int), 4, seed=0)
    with pytest.raises(InputError, match="must be positive"):
        shard_indices(np.zeros(30, int), 4, seed=0, non_iid_alpha=0)


# --------------------------------------------------------------------------- batches
def test_batch_stream_visits_each_sample_once_per_epoch_and_reshuffles():
    shards = [np.arange(0, 12), np.arange(100, 112)]
    stream = BatchStream(shards, batch_size=4, seed=0)
    assert stream.steps_per_epoch == 3
    epochs = []
    for _ in range(3):
        idx = np.stack([stream.next_batch() for _ in range(3)], axis=1)    # (K, 3, B)
        assert idx.shape == (2, 3, 4)
        epochs.append(idx.reshape(2, -1))
        for k in range(2):
            assert (np.sort(epochs[-1][k]) == shards[k]).all()               # each once
    assert not (epochs[0] == epochs[1]).all() and not (epochs[1] == epochs[2]).all()
    np.testing.assert_allclose(stream.epochs, [3.0, 3.0])


def test_batch_stream_is_seed_deterministic_and_per_worker():
    shards = shard_indices(np.arange(200) % 5, 4, seed=0)
    take = lambda s: np.stack([s.next_batch() for _ in range(30)])        # noqa: E731
    a = take(BatchStream(shards, 8, seed=7))                              # (30, K, B)
    assert (a == take(BatchStream(shards, 8, seed=7))).all()
    assert not (a == take(BatchStream(shards, 8, seed=8))).all()
    other = [shards[0], np.arange(1000, 1003), shards[2], shards[3]]     # change worker 1 only
    b = take(BatchStream(other, 8, seed=7))
    assert (b[:, 0] == a[:, 0]).all() and (b[:, 2:] == a[:, 2:]).all()
    for k, shard in enumerate(shards):
        assert np.isin(a[:, k], shard).all()


def test_batch_stream_with_uneven_and_tiny_shards():
    shards = [np.arange(0, 10), np.arange(10, 13)]         # 10 and 3 samples, batch of 4
    stream = BatchStream(shards, batch_size=4, seed=1)
    idx = np.stack([stream.next_batch() for _ in range(15)])               # (steps, K, B)
    for k, shard in enumerate(shards):    # 60 samples: whole epochs, each sample equally often
        assert (np.bincount(idx[:, k].ravel() - shard[0]) == 60 // len(shard)).all()
    assert stream.steps_per_epoch == 2                      # ceil(13 / (2 * 4))
    with pytest.raises(InputError):
        BatchStream([np.arange(3), np.array([], int)], 2, seed=0)
    with pytest.raises(InputError):
        BatchStream([np.arange(3)], 0, seed=0)
