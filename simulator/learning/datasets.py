"""Data for the workload: classification sets, their split across workers, and batches.

* :func:`load_dataset` returns a :class:`Dataset` (train/test arrays, no network access):

  ``digits`` (default)  scikit-learn's bundled 8x8 handwritten digits (1,797 samples, 64
                        features scaled to [0, 1], 10 classes), seeded stratified 80/20 split,
                        cached as .npz like mnist1d (importing scikit-learn takes a second).
  ``mnist1d``           MNIST-1D (Greydanus 2020; 40 features, 10 classes) generated locally
                        by the ``mnist1d`` package for any sample count, cached as .npz in
                        ``$SGDSIM_CACHE`` or ``~/.cache/sgdsim/``.
  ``teacher``           Gaussian inputs labelled by a random (seeded) teacher MLP.
  ``npz:PATH``          your own arrays: an .npz with keys x, y, x_test, y_test.

* :func:`shard_indices` splits the training set across K workers: iid (a seeded
  permutation) or non-iid (per-class Dirichlet proportions, Hsu et al. 2019).
* :class:`BatchStream` gives each worker a batch from its own shard at every step, reshuffling
  each shard at each of its epochs, as (K, B) index arrays.

Randomness is always drawn from generators seeded by the ``seed`` arguments, never from numpy's
global state (the mnist1d generator uses the global state; it is saved and restored around it).
"""

import os
import random
import tempfile
import zipfile
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from ..utils.errors import InputError
from ..utils.files import check_input
from ..utils.limits import check_memory
from ..utils.yamlfile import did_you_mean

__all__ = ["Dataset", "DATASETS", "load_dataset", "cache_dir", "shard_indices", "BatchStream"]

DATASETS = ("digits", "mnist1d", "teacher", "npz")

# Streams of randomness derived from the user's seed, one per purpose, so they never coincide.
_TAG_TEACHER, _TAG_SHARDS = 0x7EAC, 0x5AAD


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification set: features as floats, labels as integers 0..num_classes-1."""

    name: str                  # "digits", "mnist1d", "teacher" or "npz:PATH"
    x_train: np.ndarray        # (N, d) float64
    y_train: np.ndarray        # (N,) int64
    x_test: np.ndarray         # (M, d) float64
    y_test: np.ndarray         # (M,) int64
    num_classes: int           # C
    source: str                # where the numbers came from (package and version, or file)

    @property
    def input_dim(self):
        return self.x_train.shape[1]

    def astype(self, dtype):
        """A copy with the features in `dtype` (e.g. the model's, to avoid a cast per step)."""
        return replace(self, x_train=self.x_train.astype(dtype), x_test=self.x_test.astype(dtype))

    def __repr__(self):
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"num_classes={self.num_classes})")


def cache_dir():
    """Directory for generated data: ``$SGDSIM_CACHE`` if set, else ``~/.cache/sgdsim``."""
    return Path(os.environ.get("SGDSIM_CACHE") or Path.home() / ".cache" / "sgdsim")


def load_dataset(name=None, *, seed=0, n_samples=None, path=None, input_dim=None,
                 num_classes=None):
    """Load or generate a dataset by name.

    Parameters
    ----------
    name : str, optional
        ``"digits"`` (default), ``"mnist1d"``, ``"teacher"``, ``"npz"`` (with `path`) or
        ``"npz:PATH"``.
    seed : int
        Seeds the train/test split (digits), the generator (mnist1d, teacher) or nothing (npz).
    n_samples : int, optional
        Total samples, train + test (80/20). digits: a stratified subset of 50 to 1,797
        (default all); mnist1d: any count >= 10 (default 5,000, the package's own);
        teacher: default 10,000.
    path : str or os.PathLike, optional
        An .npz file (keys x, y, x_test, y_test); implies ``name="npz"``.
    input_dim, num_classes : int, optional
        teacher only: features (default 32) and classes (default 10).

    Raises
    ------
    InputError
        Unknown name (with a did-you-mean), options that do not apply, bad sizes, or an .npz
        that cannot be used (naming the file and key).

    Examples
    --------
    >>> data = load_dataset("digits")
    >>> data.x_train.shape, data.x_test.shape, data.num_classes
    ((1437, 64), (360, 64), 10)
    """
    if name is None:
        name = "npz" if path is not None else "digits"
    if isinstance(name, str) and name.startswith("npz:"):
        name, path = "npz", name[len("npz:"):]
    if name not in DATASETS:
        hint = did_you_mean(name, DATASETS)
        raise InputError(f"unknown dataset {name!r}", field="dataset",
                         fix=(hint + " " if hint else "")
                         + "choose from: digits, mnist1d, teacher, npz:PATH")
    if path is not None and name != "npz":
        raise InputError(f"a path is given but the dataset is {name!r}", field="dataset",
                         fix="write npz:PATH to use your own file")
    if name != "teacher" and (input_dim is not None or num_classes is not None):
        raise InputError(f"input_dim and num_classes apply to the teacher dataset, not {name!r}",
                         field="dataset", fix="leave them out; they come from the data")
    if n_samples is not None and (isinstance(n_samples, bool) or
                                  not isinstance(n_samples, (int, np.integer)) or n_samples < 10):
        raise InputError(f"must be an integer >= 10, got {n_samples!r}", field="n_samples")
    if name == "digits":
        return _digits(seed, n_samples)
    if name == "mnist1d":
        return _mnist1d(seed, 5000 if n_samples is None else int(n_samples))
    if name == "teacher":
        return _teacher(seed, 10_000 if n_samples is None else int(n_samples),
                        32 if input_dim is None else input_dim,
                        10 if num_classes is None else num_classes)
    if n_samples is not None:
        raise InputError("n_samples does not apply to an .npz file", field="n_samples",
                         fix="leave it out, or save fewer samples")
    if path is None:
        raise InputError("dataset 'npz' needs a file", field="dataset", fix="write npz:PATH")
    return _npz(path)


def _pkg_version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- digits
def _digits(seed, n_samples):
    # The split is cached: importing scikit-learn costs more than a small run (about 1 s).
    version = _pkg_version("scikit-learn")
    source = f"scikit-learn {version} load_digits, stratified 80/20 split, seed {seed}"
    file = cache_dir() / f"digits-{version}-n{'all' if n_samples is None else int(n_samples)}-seed{seed}.npz"
    arrays, note = _cached(file, lambda: _split_digits(seed, n_samples))
    return Dataset("digits", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], 10,
                   source + note)


def _split_digits(seed, n_samples):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()                          # ships inside scikit-learn, no download
    x = bunch.data / 16.0                          # (1797, 64) pixel counts 0..16 -> [0, 1]
    y = bunch.target.astype(np.int64)              # (1797,)
    n = len(y) if n_samples is None else int(n_samples)
    if not 50 <= n <= len(y):      # a stratified test set needs >= 1 sample of each class
        raise InputError(f"digits has {len(y)} samples; asked for {n}", field="n_samples",
                         fix=f"ask for 50 to {len(y)}, or use mnist1d or teacher")
    n_test = n - int(0.8 * n)      # 80/20; with n < 1797 the rest is left out, stratified too
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, train_size=n - n_test, test_size=n_test, stratify=y, random_state=seed)
    return {"x": x_train, "y": y_train, "x_test": x_test, "y_test": y_test}


def _cached(file, make):
    """``(arrays, note)``: the arrays x, y, x_test, y_test stored in `file` (.npz), or made
    by ``make()`` and stored there (written whole or not at all); `note` says which."""
    try:
        with np.load(file, allow_pickle=False) as cached:
            return {key: cached[key] for key in ("x", "y", "x_test", "y_test")}, \
                f", cached in {file}"
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass                                       # absent or unreadable: make it again
    arrays = make()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=file.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, **arrays)
        os.replace(tmp.name, file)                 # atomic: readers never see half a file
        return arrays, f", cached in {file}"
    except OSError:
        return arrays, ", not cached (cache directory not writable)"


# --------------------------------------------------------------------------- mnist1d
def _mnist1d(seed, n_samples):
    per_version = _pkg_version("mnist1d")
    file = cache_dir() / f"mnist1d-{per_version}-n{n_samples}-seed{seed}.npz"
    source = f"mnist1d {per_version} make_dataset(num_samples={n_samples}, seed={seed})"
    arrays, note = _cached(file, lambda: _generate_mnist1d(seed, n_samples))
    return Dataset("mnist1d", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"],
                   10, source + note)


def _generate_mnist1d(seed, n_samples):
    """Generate with mnist1d's make_dataset (never its get_dataset, which downloads)."""
    check_memory(n_samples * 2048, f"generating {n_samples:,} MNIST-1D samples",
                 field="n_samples", fix="ask for fewer samples")
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = -(-n_samples // 10) * 10    # make_dataset makes num_samples//10 per class
    args.seed = seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:                                           # make_dataset seeds the global generators
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    # make_dataset shuffles then splits 80/20; re-split after trimming to exactly n_samples
    # (identical to its own split when n_samples is a multiple of 10).
    x = np.concatenate([data["x"], data["x_test"]])[:n_samples]    # (n, 40)
    y = np.concatenate([data["y"], data["y_test"]])[:n_samples].astype(np.int64)
    split = int(n_samples * args.train_split)
    return {"x": x[:split], "y": y[:split], "x_test": x[split:], "y_test": y[split:]}


# --------------------------------------------------------------------------- teacher
def _teacher(seed, n_samples, input_dim, num_classes, hidden=64):
    for what, value, least in (("input_dim", input_dim, 1), ("num_classes", num_classes, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise InputError(f"must be an integer >= {least}, got {value!r}", field=what)
    check_memory(16 * n_samples * (input_dim + hidden + num_classes),
                 f"generating {n_samples:,} teacher samples", field="n_samples",
                 fix="ask for fewer samples")
    rng = np.random.default_rng([seed, _TAG_TEACHER])
    x = rng.standard_normal((n_samples, input_dim))                        # (N, d)
    W1 = rng.standard_normal((input_dim, hidden)) / np.sqrt(input_dim)     # (d, h)
    W2 = rng.standard_normal((hidden, num_classes)) / np.sqrt(hidden)      # (h, C)
    logits = np.maximum(x @ W1, 0.0) @ W2                                  # (N, C)
    logits -= logits.mean(0)             # centre each class's logit: roughly balanced classes
    y = logits.argmax(1).astype(np.int64)                                  # (N,)
    split = int(n_samples * 0.8)
    return Dataset("teacher", x[:split], y[:split], x[split:], y[split:], int(num_classes),
                   f"teacher MLP {input_dim}-{hidden}-{num_classes} (ReLU, argmax labels) on "
                   f"N(0, I) inputs, {n_samples} samples, seed {seed}")


# --------------------------------------------------------------------------- npz
_NPZ_FIX = "save it with np.savez(path, x=X, y=Y, x_test=X_TEST, y_test=Y_TEST)"


def _npz(path):
    file = str(path)
    check_input(file)                               # a regular file: no FIFO, no device
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError as err:
        raise InputError("no such file", file=file, fix="check the path") from err
    except (OSError, ValueError) as err:
        raise InputError(f"not a readable .npz file: {err}", file=file, fix=_NPZ_FIX) from err
    if not hasattr(archive, "files"):
        raise InputError("holds a single array, not named arrays", file=file, fix=_NPZ_FIX)
    with archive:
        try:                              # uncompressed sizes, before decompressing anything
            stored = sum(info.file_size for info in archive.zip.infolist())
        except AttributeError:
            stored = 0
        check_memory(3 * stored, f"reading {file}", file=file,
                     fix="use a smaller data set (it is decompressed and converted to float64)")
        arrays = {}
        for key in ("x", "y", "x_test", "y_test"):
            if key not in archive.files:
                raise InputError(f"missing key {key!r} (has: {', '.join(archive.files) or 'none'})",
                                 file=file, field=key, fix=_NPZ_FIX)
            try:
                arrays[key] = archive[key]
            except ValueError as err:             # object arrays need pickle: refuse
                raise InputError(f"cannot read: {err}", file=file, field=key,
                                 fix="store plain numeric arrays") from err
    for key in ("x", "x_test"):
        x = arrays[key]
        if x.ndim < 2 or len(x) == 0 or x.dtype.kind not in "iuf":
            raise InputError(f"must be a non-empty numeric array (N, d) or (N, ...), got "
                             f"shape {x.shape} dtype {x.dtype}", file=file, field=key)
        x = x.reshape(len(x), -1).astype(np.float64)   # images (N, h, w) -> (N, h*w)
        if not np.isfinite(x).all():
            raise InputError("contains NaN or infinity", file=file, field=key)
        arrays[key] = x
    if arrays["x_test"].shape[1] != arrays["x"].shape[1]:
        raise InputError(f"has {arrays['x_test'].shape[1]} features per sample but x has "
                         f"{arrays['x'].shape[1]}", file=file, field="x_test")
    for key, xkey in (("y", "x"), ("y_test", "x_test")):
        y = arrays[key]
        if y.ndim != 1 or len(y) != len(arrays[xkey]):
            raise InputError(f"must have shape ({len(arrays[xkey])},) to match {xkey}, got "
                             f"{y.shape}", file=file, field=key)
        integral = y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.isfinite(y).all()
                                           and (y == np.round(y)).all())
        if not integral:
            raise InputError(f"labels must be integers 0..C-1, got dtype {y.dtype}"
                             + (f" (e.g. {y[y != np.round(y)][0]!r})" if y.dtype.kind == "f"
                                and np.isfinite(y).all() else ""), file=file, field=key,
                             fix="store class indices, not one-hot vectors or scores")
        if y.min() < 0:
            raise InputError(f"labels must be >= 0, got {y.min()}", file=file, field=key)
        arrays[key] = y.astype(np.int64)
    num_classes = int(max(arrays["y"].max(), arrays["y_test"].max())) + 1
    if num_classes < 2:
        raise InputError("needs at least 2 classes", file=file, field="y")
    return Dataset(f"npz:{file}", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"],
                   num_classes, f"file {file}")


# --------------------------------------------------------------------------- sharding
def shard_indices(y, workers, *, seed, non_iid_alpha=None):
    """Split sample indices 0..N-1 across `workers`; every sample goes to exactly one worker.

    Parameters
    ----------
    y : ndarray of int (N,)
        Labels (used by the non-iid split).
    workers : int
        K.
    seed : int
    non_iid_alpha : float, optional
        None: iid, a seeded permutation cut into K shards of near-equal size. A positive
        float: for every class c, proportions p_c ~ Dirichlet(alpha * 1_K) split that class's
        samples across workers (Hsu, Qi & Brown 2019, "Measuring the effects of non-identical
        data distribution"); small alpha = each worker sees few classes, large alpha -> iid.
        A worker left empty then takes one sample from the largest shard, until none is.

    Returns
    -------
    list of K sorted int64 arrays.

    Examples
    --------
    >>> [s.tolist() for s in shard_indices(np.zeros(5, int), 2, seed=0)]
    [[1, 2, 4], [0, 3]]
    """
    y = np.asarray(y)
    K, N = int(workers), len(y)
    if K < 1 or N < K:
        raise InputError(f"cannot split {N} samples across {K} workers",
                         field="workers", fix=f"use between 1 and {N} workers")
    rng = np.random.default_rng([seed, _TAG_SHARDS])
    if non_iid_alpha is None:
        return [np.sort(s) for s in np.array_split(rng.permutation(N), K)]
    if not non_iid_alpha > 0:
        raise InputError(f"must be positive, got {non_iid_alpha!r}", field="non_iid_alpha",
                         fix="write e.g. 0.5 (smaller = more skewed), or leave it out for iid")
    parts = [[] for _ in range(K)]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))                   # (n_c,)
        p = rng.dirichlet(np.full(K, float(non_iid_alpha)))                 # (K,)
        cuts = (np.cumsum(p)[:-1] * len(members)).astype(np.int64)          # (K-1,)
        for k, part in enumerate(np.split(members, cuts)):
            parts[k].append(part)
    shards = [np.concatenate(p) for p in parts]
    for k in range(K):                     # repair: no worker may be left without data
        if len(shards[k]) == 0:
            big = max(range(K), key=lambda j: len(shards[j]))
            take = rng.integers(len(shards[big]))
            shards[k] = shards[big][take:take + 1]
            shards[big] = np.delete(shards[big], take)
    return [np.sort(s).astype(np.int64) for s in shards]


class BatchStream:
    """Each worker's batches from its own shard, reshuffled at every epoch of that shard.

    Worker k reads its shard in a fresh random order each epoch (without replacement, drawn
    from its own generator: ``np.random.SeedSequence(seed).spawn(K)[k]``), as one endless
    stream cut into batches of `batch_size`; a batch may straddle two epochs, so no sample is
    dropped and a shard smaller than a batch still works. Worker k's batches depend only on
    its shard, `batch_size` and `seed`.

    Parameters
    ----------
    shards : list of K int arrays
        Dataset indices of each worker (see :func:`shard_indices`).
    batch_size : int
        B, per worker.
    seed : int

    Attributes
    ----------
    steps_per_epoch : int
        Steps for the K workers together to see the training set once,
        ``ceil(N / (K * B))`` with N the total of the shards (the unit of epoch-based
        learning-rate rules).
    samples_seen : ndarray (K,)
        Samples served to each worker so far; ``samples_seen / shard sizes`` is its epoch.

    Examples
    --------
    >>> stream = BatchStream([np.arange(4), np.arange(4, 8)], batch_size=2, seed=0)
    >>> stream.next_batch().shape, stream.steps_per_epoch
    ((2, 2), 2)
    """

    _BLOCK_STEPS = 64

    def __init__(self, shards, batch_size, seed):
        self.shards = [np.asarray(s, dtype=np.int64) for s in shards]
        if not self.shards or any(len(s) == 0 for s in self.shards):
            raise InputError("every worker needs a non-empty shard", field="shards")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise InputError(f"must be a positive integer, got {batch_size!r}",
                             field="batch_size")
        self.batch_size = int(batch_size)
        self.workers = len(self.shards)
        self.shard_sizes = np.array([len(s) for s in self.shards])           # (K,)
        total = int(self.shard_sizes.sum())
        self.steps_per_epoch = -(-total // (self.workers * self.batch_size))
        self.samples_seen = np.zeros(self.workers, dtype=np.int64)          # (K,)
        self._rngs = [np.random.default_rng(s) for s in
                      np.random.SeedSequence(seed).spawn(self.workers)]
        self._pending = [np.empty(0, dtype=np.int64) for _ in range(self.workers)]
        # Work in blocks of _BLOCK_STEPS batches, and draw each worker's permutations whole
        # epochs at a time (enough epochs for a block: one rng call per worker per block), so
        # the Python loop over workers runs once per block, not once per step. The chunk size
        # depends only on the worker's shard size and B, so its stream does too.
        self._block = np.empty((self.workers, 0, self.batch_size), dtype=np.int64)
        self._cursor = 0

    @property
    def epochs(self):
        """Epochs of its own shard each worker has been served, as floats (K,)."""
        return self.samples_seen / self.shard_sizes

    def _refill(self):
        need = self._BLOCK_STEPS * self.batch_size
        # The spent block goes before the next is made: at 16,384 workers each is 268 MB.
        self._block = None
        block = np.empty((self.workers, need), dtype=np.int64)             # (K, steps*B)
        for k, (shard, rng) in enumerate(zip(self.shards, self._rngs)):
            stream = [self._pending[k]]
            have = len(stream[0])
            while have < need:        # new epochs: one fresh permutation of the shard each
                epochs = -(-need // len(shard))
                stream.append(rng.permuted(np.tile(shard, (epochs, 1)), axis=1).ravel())
                have += epochs * len(shard)
            stream = np.concatenate(stream)
            # A copy of the few left over: a view would keep the worker's whole stream alive
            # (16 kB a worker, 260 MB at 16,384 workers).
            block[k], self._pending[k] = stream[:need], stream[need:].copy()
        self._block = block.reshape(self.workers, self._BLOCK_STEPS, self.batch_size)
        self._block.flags.writeable = False
        self._cursor = 0

    def next_batch(self):
        """Dataset indices of the next batch of every worker: int64 array (K, B)."""
        if self._cursor == self._block.shape[1]:
            self._refill()
        idx = self._block[:, self._cursor]                                  # (K, B)
        self._cursor += 1
        self.samples_seen += self.batch_size
        return idx
