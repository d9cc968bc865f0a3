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
