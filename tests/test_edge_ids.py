"Row ids and labels handed to the callbacks' recording are checked each epoch: a campaign of misuse, each a clear error, none a silent wrong recording."
import numpy as np
import pytest
import torch

from mapd.integrations.callbacks import _Recording, _as_rows

R, K, B = 60, 3, 16
g = torch.Generator().manual_seed(0)
Y = torch.randint(0, K, (R,), generator=g)
LOGITS = torch.randn(R, K, generator=g)


def epoch(ids_of, labels_of=lambda ids: Y[ids], given=Y):
    "One epoch of batches over a fixed order: the batch holds ids_of(true ids) and labels_of(true ids); returns the recorded losses."
    rec = _Recording(_as_rows(given.numpy(), None), None, config=dict(mode="online"), overwrite=False, max_logit_bytes=2**29, keep_probs=())
    rec.start(1, 0, "cpu")
    order = torch.randperm(R, generator=torch.Generator().manual_seed(1))
    for i in range(0, R, B):
        true = order[i:i + B]
        rec.record(ids_of(true), LOGITS[true], labels_of(true))
    rec.end_epoch()
    return rec.trajectories("loss")[:, 0]


PERM = torch.randperm(R, generator=torch.Generator().manual_seed(2))
MISUSE = {   # name: (ids_of, labels_of, given, error matched)
    "ids shifted +1": (lambda t: t + 1, None, None, r"must lie in \[0, 60\)"),
    "ids shifted -1": (lambda t: t - 1, None, None, r"must lie in \[0, 60\)"),
    "ids rolled": (lambda t: (t + 1) % R, None, None, "labels differ"),
    "ids permuted": (lambda t: PERM[t], None, None, "labels differ"),
    "ids duplicated in the epoch": (lambda t: t % 30, None, None, "more than once"),
    "ids float": (lambda t: t.float(), None, None, "must be integers"),
    "labels given permuted": (None, None, Y[PERM], "labels differ"),
}


@pytest.mark.parametrize("name", list(MISUSE))
def test_misuse_is_a_clear_error(name):
    ids_of, labels_of, given, match = MISUSE[name]
    with pytest.raises((ValueError, TypeError), match=match):
        epoch(ids_of or (lambda t: t), labels_of or (lambda t: Y[t]), Y if given is None else given)


def test_right_ids_record_right_losses():
    import torch.nn.functional as F
    np.testing.assert_allclose(epoch(lambda t: t), F.cross_entropy(LOGITS, Y, reduction="none").numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(epoch(lambda t: t, lambda t: Y[t].float()), F.cross_entropy(LOGITS, Y, reduction="none").numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name,ids,logits,err,match", [
    ("ids as strings", np.array([str(i) for i in range(B)]), LOGITS[:B], TypeError, "row ids must be integers"),
    ("ids as objects", np.array(list(range(B)), dtype=object), LOGITS[:B], TypeError, "row ids must be integers"),
    ("logits 1-d", torch.arange(B), LOGITS[:B, 0], ValueError, r"logits must be \(B, K\)"),
    ("logits 3-d", torch.arange(B), LOGITS[:B, :, None], ValueError, r"logits must be \(B, K\)")])
def test_batch_of_wrong_kind_named(name, ids, logits, err, match):
    "Row ids that cannot be integers and logits that are not (B, K) are named (main: torch's own TypeError, or an IndexError)."
    rec = _Recording(_as_rows(Y.numpy(), None), None, config=dict(mode="online"), overwrite=False, max_logit_bytes=2**29, keep_probs=())
    rec.start(1, 0, "cpu")
    with pytest.raises(err, match=match): rec.record(ids, logits, Y[:B])


def test_nan_logits_said_as_such():
    "Rows whose batch held non-finite logits get a NaN loss, said as a diverged model's, not as rows in no batch (main said the latter)."
    bad = LOGITS.clone(); bad[3] = float("nan")
    rec = _Recording(_as_rows(Y.numpy(), None), None, config=dict(mode="online"), overwrite=False, max_logit_bytes=2**29, keep_probs=())
    rec.start(1, 0, "cpu")
    with pytest.warns(UserWarning, match="1 of 60 rows got a NaN loss") as w:
        for i in range(0, R, B): rec.record(torch.arange(i, min(i + B, R)), bad[i:i + B], Y[i:i + B])
        rec.end_epoch()
    assert not any("in no recorded batch" in str(x.message) for x in w)


def test_from_torch_item_that_fails_is_named():
    "A Dataset whose __getitem__ raises is named with the item (main: the Dataset's own IndexError, a traceback through run_audit)."
    from mapd.sources import from_torch
    class Broken(torch.utils.data.Dataset):
        def __len__(self): return 4
        def __getitem__(self, i):
            if i == 2: raise IndexError("gone")
            return torch.zeros(1, 4, 4, dtype=torch.uint8), i % 2
    with pytest.raises(ValueError, match=r"item 2 of the Broken \(4 items\) could not be read: IndexError: gone"): from_torch(Broken(), quiet=True)
