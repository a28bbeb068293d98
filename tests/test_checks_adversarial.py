"""Self-checks of the adversarial chapter: right answers pass, known mistakes get their hints."""

import numpy as np
import pytest

from mgs_teach import checks


def rejects(check, wrong, capsys):
    for hint, fn in wrong.items():
        assert not check(fn), hint
        out = capsys.readouterr().out
        assert "❌" in out and hint in out, (hint, out)


def test_fgsm_step(capsys):
    assert checks.fgsm_step(lambda x, g, eps: np.clip(x + eps * np.sign(g), 0, 1))
    capsys.readouterr()
    rejects(checks.fgsm_step, {
        "clip after": lambda x, g, eps: x + eps * np.sign(g),
        "along the gradient": lambda x, g, eps: np.clip(x - eps * np.sign(g), 0, 1),
        "use the sign": lambda x, g, eps: np.clip(x + eps * g, 0, 1),
        "shape of x": lambda x, g, eps: x.ravel(),
        "direction of the sign": lambda x, g, eps: np.clip(x + 2 * eps * np.sign(g), 0, 1),
    }, capsys)  # fmt: skip


def test_linf_projection(capsys):
    assert checks.linf_projection(lambda x, x0, e: np.clip(np.clip(x, x0 - e, x0 + e), 0, 1))
    capsys.readouterr()

    def l2(x, x0, e):
        d = x - x0
        return np.clip(x0 + d * min(1.0, e / np.linalg.norm(d)), 0, 1)

    rejects(checks.linf_projection, {
        "stay in [0, 1]": lambda x, x0, e: np.clip(x, x0 - e, x0 + e),
        "L2 ball": l2,
        "nearest point": lambda x, x0, e: np.clip(x, 0, 1),
    }, capsys)  # fmt: skip


def _auc(neg, pos):
    d = np.asarray(pos)[:, None] - np.asarray(neg)[None, :]
    return float(np.mean((d > 0) + 0.5 * (d == 0)))


def test_auc_agrees_with_scikit_learn(capsys):
    from sklearn.metrics import roc_auc_score

    neg, pos = np.array([0.1, 0.4, 0.4, 0.9]), np.array([0.4, 0.8, 0.9])
    labels = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    assert _auc(neg, pos) == pytest.approx(roc_auc_score(labels, np.r_[neg, pos]))
    assert checks.auc(_auc)
    capsys.readouterr()
    rejects(checks.auc, {
        "opposite score": lambda n, p: 1 - _auc(n, p),
        "tie counts one half": lambda n, p: float(np.mean(np.asarray(p)[:, None] > n)),
        "one number": lambda n, p: [0.5, 0.5],
        "every positive with every negative": lambda n, p: float(np.mean(p) > np.mean(n)),
    }, capsys)  # fmt: skip


def test_tpr_at_fpr(capsys):
    def right(neg, pos, fpr):
        threshold = np.sort(neg)[::-1][int(np.floor(fpr * len(neg) + 1e-9))]
        return float(np.mean(pos > threshold))

    assert checks.tpr_at_fpr(right)
    capsys.readouterr()
    rejects(checks.tpr_at_fpr, {
        "strictly above": lambda n, p, fpr: float(np.mean(p >= np.sort(n)[::-1][
            int(np.floor(fpr * len(n) + 1e-9))])),
        "interpolates": lambda n, p, fpr: float(np.mean(p > np.quantile(n, 1 - fpr))),
        "from the negatives": lambda n, p, fpr: float(np.mean(p > np.quantile(p, fpr))),
        "sort the negatives": lambda n, p, fpr: float(np.mean(p > np.quantile(n, 0.5))),
    }, capsys)  # fmt: skip


@pytest.mark.parametrize("check", [checks.fgsm_step, checks.linf_projection, checks.auc,
                                   checks.tpr_at_fpr])  # fmt: skip
def test_survives_malformed_answers(check, capsys):
    for bad in (lambda *a: None, lambda *a: "x", lambda *a: 1 / 0, lambda *a: [[1, 2], [3]]):
        assert not check(bad)
    assert capsys.readouterr().out.count("❌") == 4
