"MAPD against scikit-learn on real trajectories and at the audit's shape, the CPU's grouped filter, chunking, threads, and the cuML dispatch (with a stand-in module)."
import importlib.machinery, math, sys, types

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from mapd.knn import MAPD, _CPUSearch, _in_chunks, knn_fractions
from mapd.store import TrajectoryStore


def _probe_and_train(out):
    st = TrajectoryStore(out/"trajectories")
    fit_rows = st.select(role="probe", split="fit")
    train_rows = st.select(role="train")
    return (st.trajectories("loss", fit_rows), st.rows.category.to_numpy()[fit_rows], st.trajectories("loss", train_rows))


def test_probabilities_equal_sklearn_up_to_ties(digits_audit):
    out, cfg, _ = digits_audit
    G, m, X = _probe_and_train(out)
    k = 10
    ours = MAPD(k=k, device="cpu").fit(G, m)
    sk = KNeighborsClassifier(n_neighbors=k).fit(G.astype(np.float64), m)
    d, _ = KNeighborsClassifier(n_neighbors=k + 1).fit(G.astype(np.float64), m).kneighbors(X.astype(np.float64))
    tie = np.isclose(d[:, k - 1], d[:, k], rtol=1e-4, atol=1e-6)  # the k-th and (k+1)-th neighbours equally far
    assert tie.mean() < 0.05, f"{tie.mean():.1%} of rows are ties; the comparison would say little"
    p_ours, p_sk = ours.predict_proba(X), sk.predict_proba(X.astype(np.float64))
    assert list(ours.classes_) == list(sk.classes_)
    np.testing.assert_allclose(p_ours[~tie], p_sk[~tie], atol=1e-6)
    assert (ours.predict(X)[~tie] == sk.predict(X.astype(np.float64))[~tie]).all()


def test_chunked_equals_unchunked(digits_audit):
    out, _, _ = digits_audit
    G, m, X = _probe_and_train(out)
    whole = MAPD(k=10, device="cpu").fit(G, m).predict_proba(X)
    chunked = MAPD(k=10, device="cpu", max_block=len(G) * 7).fit(G, m).predict_proba(X)  # 7 queries per block
    np.testing.assert_array_equal(whole, chunked)


def test_cut_trajectories(digits_audit):
    out, _, _ = digits_audit
    G, m, X = _probe_and_train(out)
    p = MAPD(k=10).fit(G[:, :5], m).predict_proba(X[:, :5])
    assert p.shape == (len(X), len(np.unique(m)))
    with pytest.raises(ValueError, match="fitted on trajectories of 5 epochs but got 15"):
        MAPD(k=10).fit(G[:, :5], m).predict_proba(X)


def test_cuml_backend_dispatch(monkeypatch, digits_audit):
    """backend='auto' hands the work to cuML when it is installed and a GPU is visible.

    cuML cannot run here (no GPU): a stand-in module with cuML's KNeighborsClassifier interface, backed by
    scikit-learn, checks the dispatch and the arguments. The real cuML path is untested on this machine."""
    out, _, _ = digits_audit
    G, m, X = _probe_and_train(out)
    calls = {}

    class FakeCuKNN:
        def __init__(self, n_neighbors, output_type):
            calls["init"] = dict(n_neighbors=n_neighbors, output_type=output_type)
            self._sk = KNeighborsClassifier(n_neighbors=n_neighbors)
        def fit(self, X, y):
            calls["fit"] = (X.dtype, y.dtype, X.shape)
            self._sk.fit(X, y); return self
        def predict_proba(self, X):
            calls["predict_proba"] = X.shape
            return self._sk.predict_proba(X)

    cuml = types.ModuleType("cuml"); cuml.__spec__ = importlib.machinery.ModuleSpec("cuml", None)
    cuml.neighbors = types.ModuleType("cuml.neighbors"); cuml.neighbors.KNeighborsClassifier = FakeCuKNN
    monkeypatch.setitem(sys.modules, "cuml", cuml)
    monkeypatch.setitem(sys.modules, "cuml.neighbors", cuml.neighbors)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    knn = MAPD(k=10, backend="auto").fit(G, m)
    assert knn.backend_ == "cuml"
    p = knn.predict_proba(X)
    assert calls["init"] == dict(n_neighbors=10, output_type="numpy")
    assert calls["fit"][1] == np.int32 and calls["predict_proba"] == X.shape
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    np.testing.assert_allclose(p, MAPD(k=10, backend="torch").fit(G, m).predict_proba(X), atol=1e-6)


def test_cuml_requested_without_gpu_is_a_clear_error():
    if torch.cuda.is_available(): pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="needs RAPIDS cuML and a CUDA GPU"):
        MAPD(k=2, backend="cuml").fit(np.random.rand(10, 3), ["a"] * 5 + ["b"] * 5)


def _curves(n, epochs, rng):
    "Loss curves of six categories (decay rates) plus noise, float32, as the benchmark makes them."
    rate = rng.choice([1.0, 0.3, 0.1, 0.02, 0.0, 0.5], n)
    return (2.3 * np.exp(-rate[:, None] * np.arange(epochs)) + rng.normal(0, 0.2, (n, epochs))).astype(np.float32), rate.astype(str)


@pytest.mark.parametrize("M,E,k", [(20, 5, 20), (97, 7, 3), (1501, 20, 20), (3000, 100, 20), (500, 10, 50)])
def test_grouped_filter_finds_what_one_topk_finds(M, E, k):
    "The CPU's filter (minima of groups of probes, then only the members of the k nearest groups) keeps the k nearest of one topk over all."
    g = torch.Generator().manual_seed(M)
    G, X = torch.randn(M, E, generator=g), torch.randn(300, E, generator=g)
    for levels in [None, (), (2,), (3,), (3, 3), (4, 4), (5, 3), (8, 8)]:
        if levels and -(-M // math.prod(levels)) < k: continue  # fewer groups than k
        s = _CPUSearch(G, k, levels)
        Xc = X - s.mu   # the search moves queries by the probes' mean, as it moved the probes
        a = torch.cat([Xc, (Xc * Xc).sum(1, keepdim=True), torch.ones(len(X), 1)], 1)
        ref_v, ref_j = (a @ s.W).topk(k, 1, largest=False)  # the same product, one plain topk over all (padded) probes
        v, j = s(X)
        assert (j < M).all()
        torch.testing.assert_close(v, ref_v, rtol=0, atol=0)
        assert (j.sort(1)[0] == ref_j.sort(1)[0]).all(), f"levels {s.levels}"
        assert (s(X, sorted=False)[1].sort(1)[0] == ref_j.sort(1)[0]).all()
        d64 = torch.cdist(X.double(), G.double()).topk(k, 1, largest=False)[0]
        torch.testing.assert_close(v.clamp_min(0).sqrt().double(), d64, rtol=1e-4, atol=1e-4)


def test_probabilities_equal_sklearn_at_the_audits_shape():
    "1,500 probes x 20 epochs: the grouped filter and the threads at work, against scikit-learn in float64 up to ties."
    rng = np.random.default_rng(0)
    (G, m), (X, _) = _curves(1500, 20, rng), _curves(20_000, 20, rng)
    knn = MAPD(k=20, device="cpu").fit(G, m)
    p = knn.predict_proba(X)
    assert knn._cpu[None].levels, "1,500 probes should go through the grouped filter"
    G64, X64 = G.astype(np.float64), X.astype(np.float64)
    d, _ = KNeighborsClassifier(n_neighbors=21, algorithm="brute").fit(G64, m).kneighbors(X64)
    tie = np.isclose(d[:, 19], d[:, 20], rtol=1e-4, atol=1e-6)
    assert tie.mean() < 0.05
    np.testing.assert_allclose(p[~tie], KNeighborsClassifier(n_neighbors=20, algorithm="brute").fit(G64, m).predict_proba(X64)[~tie], atol=1e-6)
    dist, idx = knn.kneighbors(X)
    np.testing.assert_allclose(dist, d[:, :20], rtol=1e-3, atol=1e-3)
    assert (np.diff(dist, axis=1) >= 0).all()
    codes = torch.as_tensor(np.unique(m, return_inverse=True)[1])
    np.testing.assert_array_equal(knn_fractions(torch.from_numpy(X[:2000]), torch.from_numpy(G), codes, 20, len(knn.classes_)).numpy(), p[:2000])
    for among in (None, "0.3", ["1.0", "0.0"]):   # the k-th nearest of some categories, through the same filter as the vote
        mask = np.ones(len(m), bool) if among is None else np.isin(m, among)
        ref = np.sort(((X64[:2000, None] - G64[None, mask]) ** 2).sum(-1), 1)[:, 19] ** .5
        np.testing.assert_allclose(knn.kth_distance(X[:2000], among), ref, rtol=1e-3, atol=1e-3)


def test_same_result_whatever_the_threads_and_chunks():
    rng = np.random.default_rng(1)
    (G, m), (X, _) = _curves(1500, 20, rng), _curves(5000, 20, rng)
    p = MAPD(k=20, device="cpu").fit(G, m).predict_proba(X)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        np.testing.assert_array_equal(MAPD(k=20, device="cpu").fit(G, m).predict_proba(X), p)
    finally: torch.set_num_threads(before)
    knn = MAPD(k=20, device="cpu", max_block=1504 * 7).fit(G, m)
    np.testing.assert_array_equal(knn.predict_proba(X), p)
    assert torch.get_num_threads() == before


def test_a_failing_chunk_stops_the_threads_and_restores_torchs():
    before, done = torch.get_num_threads(), []
    def work(i, e, buf):
        if i == 30: raise RuntimeError("chunk 3 fails")
        done.append(i)
    with pytest.raises(RuntimeError, match="chunk 3 fails"):
        _in_chunks(1000, 10, work, threads=2)
    assert torch.get_num_threads() == before and len(done) < 99
