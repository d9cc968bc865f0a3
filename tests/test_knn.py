"MAPD against scikit-learn on real trajectories, chunking, and the cuML dispatch (with a stand-in module)."
import importlib.machinery, sys, types

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from mapd.knn import MAPD
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
