"""What the adversarial chapter found: Appendix C's detector, tested on the book's network.

The paper's Appendix C reports that Martin and Elster "observed that if adversarial samples
were present in the input, then the trace of the approximate FIM would be large", says that
this matrix is "the actually same as" the MGS kernel, and reads it for MGS: "if for
adversarial data the trace is large, then the network considers that data to be very
different from existing data". :func:`adversarial_findings` reduces the chapter's
measurements (ROC AUCs of three scores against three perturbations, the attack-strength
sweep, the adaptive attacks, and the check of the chapter's proposition
tr F(x) = tr(H K(x))) to which of these held and, for what did not, the computed diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from mgs_teach.lab.findings import join_and, percent

__all__ = ["CONFIDENCE", "FISHER", "MGS", "AdversarialFindings", "adversarial_findings",
           "detection"]  # fmt: skip

#: The chapter's names of its three scores.
MGS, FISHER, CONFIDENCE = "tr K(x) (MGS)", "tr F(x) (Fisher)", "1 - confidence"
#: How the prose names them.
SAY = {MGS: "the MGS trace tr K(x)", FISHER: "the Fisher trace tr F(x)",
       CONFIDENCE: "one minus the confidence"}  # fmt: skip


def detection(auc: float, margin: float = 0.1) -> str:
    """``"detects"`` for an AUC of at least 0.5 + ``margin``, ``"inverted"`` for one of at most
    0.5 - ``margin`` (the attacked inputs look less suspicious than clean ones), else
    ``"chance"``."""
    return "detects" if auc >= 0.5 + margin else "inverted" if auc <= 0.5 - margin else "chance"


def _say_score(aucs: pd.Series) -> str:
    """What one score does against each perturbation, e.g. ``"detects FGSM (AUC 0.78) and
    PGD (AUC 0.71)"`` or ``"is no better than chance against every perturbation (AUC 0.49
    to 0.52)"``."""
    verdicts = {k: detection(a) for k, a in aucs.items()}
    if all(v == "chance" for v in verdicts.values()):
        return (f"is no better than chance against every perturbation (AUC "
                f"{aucs.min():.2f} to {aucs.max():.2f})")  # fmt: skip
    parts = []
    for verdict, say in (("detects", "detects {}"), ("chance", "is at chance against {}"),
                         ("inverted", "scores {} below clean inputs")):  # fmt: skip
        kinds = [f"{k} (AUC {aucs[k]:.2f})" for k, v in verdicts.items() if v == verdict]
        if kinds:
            parts.append(say.format(join_and(kinds)))
    return ", and ".join(parts) if len(parts) < 3 else "; ".join(parts)


@dataclass(frozen=True)
class AdversarialFindings:
    """The chapter's findings (see :func:`adversarial_findings` for the fields)."""

    eps: float
    accuracy: Mapping[str, float]  # input kind -> accuracy ("clean", "FGSM", ...)
    aucs: pd.DataFrame  # score x perturbation, at eps
    identity_gap: float  # largest relative gap of tr F and tr(H K)
    fisher_confidence_rho: float
    fisher_kernel_rho: float
    sweep: pd.DataFrame  # index (attack, eps): accuracy and each score's AUC
    strong_confidence: Mapping[str, float]  # "clean", "PGD" -> mean confidence, largest eps
    adaptive: pd.DataFrame  # index: the score hidden from

    def detects(self, score: str, kinds: Sequence[str] = ("FGSM", "PGD")) -> bool:
        """Whether ``score`` detects every attack of ``kinds`` at :attr:`eps`."""
        return all(detection(self.aucs.loc[score, k]) == "detects" for k in kinds)

    @property
    def strong_eps(self) -> float:
        return float(self.sweep.loc["PGD"].index.max())

    def texts(self) -> dict[str, str]:
        """Name -> text for the chapter's prose (glued with the prefix ``adv_``)."""
        return {**self._attack_texts(), **self._sweep_texts(), **self._adaptive_texts(),
                **self._box_texts()}  # fmt: skip

    def _attack_texts(self) -> dict[str, str]:
        acc, a = self.accuracy, self.aucs
        random_drop = acc["clean"] - acc["random signs"]
        best = {k: a[k].idxmax() for k in ("FGSM", "PGD")}
        return {
            "eps": f"{self.eps:g}",
            **{f"acc_{k.replace(' ', '_').lower()}": percent(v) for k, v in acc.items()},
            "random_verdict": "do little" if random_drop < 0.05 else "also lower it",
            "mgs": _say_score(a.loc[MGS]),
            "fisher": _say_score(a.loc[FISHER]),
            "confidence": _say_score(a.loc[CONFIDENCE]),
            "best_fgsm": SAY[best["FGSM"]],
            "best_pgd": SAY[best["PGD"]],
            "identity_gap": f"{self.identity_gap:.0e}",
            "rho_confidence": f"{self.fisher_confidence_rho:.2f}",
            "rho_kernel": f"{self.fisher_kernel_rho:.2f}",
        }

    def _sweep_texts(self) -> dict[str, str]:
        fisher = self.sweep.loc["PGD", FISHER]
        strong, conf = self.strong_eps, self.strong_confidence
        auc = fisher.loc[strong]
        return {
            "fisher_by_eps": join_and([f"{a:.2f} at ε = {e:g}" for e, a in fisher.items()]),
            "strong_eps": f"{strong:g}",
            "strong_auc": f"{auc:.2f}",
            "strong_verdict": "falls below 0.5" if auc < 0.5 else "stays above 0.5",
            "strong_acc": percent(self.sweep.loc[("PGD", strong), "accuracy"]),
            "strong_conf_clean": f"{conf['clean']:.3f}",
            "strong_conf_pgd": f"{conf['PGD']:.3f}",
            "strong_conf_verdict": "surer of its answers than on clean digits"
            if conf["PGD"] > conf["clean"] else "less sure of its answers than on clean digits",
        }  # fmt: skip

    def _adaptive_texts(self) -> dict[str, str]:
        ad = self.adaptive
        hidden = [s for s, row in ad.iterrows()
                  if detection(row["AUC, hiding, fooled"]) != "detects"
                  and row["AUC, hiding, fooled"] < row["AUC, plain PGD, fooled"]]  # fmt: skip
        costs = [s for s, row in ad.iterrows() if row["accuracy"] > self.accuracy["PGD"]]
        fisher = ad.loc[FISHER]
        return {
            "hide_aucs": join_and([f"{row['AUC, plain PGD, fooled']:.2f} → "
                               f"{row['AUC, hiding, fooled']:.2f} for {SAY[s]} (μ = "
                               f"{row['mu']:g})" for s, row in ad.iterrows()]),
            "hide_verdict": "against both scores" if len(hidden) == len(ad)
            else f"only against {join_and([SAY[s] for s in hidden])}" if hidden
            else "against neither score",
            "hide_acc": join_and([f"{percent(row['accuracy'])} hiding from {SAY[s]}"
                              for s, row in ad.iterrows()]),
            "hide_cost": "Hiding costs the attacker success" if len(costs) == len(ad)
            else "Hiding does not always cost the attacker success",
            "hide_most": SAY[ad["accuracy"].idxmax()],
            "hide_conf": f"from {fisher['confidence, clean']:.3f} on the clean digits to "
            f"{fisher['confidence, not fooled']:.3f} on the attacked ones",
            "hide_conf_verdict": "surer" if fisher["confidence, not fooled"]
            > fisher["confidence, clean"] else "less sure",
            "hide_all_auc": f"{fisher['AUC, hiding, all']:.2f}",
            "hide_all_verdict": "falls below 0.5" if fisher["AUC, hiding, all"] < 0.5
            else "stays above 0.5",
        }  # fmt: skip

    def _box_texts(self) -> dict[str, str]:
        t = {**self._attack_texts(), **self._sweep_texts(), **self._adaptive_texts()}
        held, failed = [], []
        fisher = f"at ε = {t['eps']} the Fisher trace {t['fisher']}"
        (held if self.detects(FISHER) else failed).append(
            f"Martin and Elster's observation that the approximate FIM's trace is large on "
            f"adversarial inputs: {fisher}"
        )
        (held if self.detects(MGS) else failed).append(
            f"Appendix C's reading for MGS, that the trace is large for adversarial data: "
            f"the MGS trace tr K(x) {t['mgs']}"
        )
        strong_auc = self.sweep.loc[("PGD", self.strong_eps), FISHER]
        if detection(strong_auc) != "detects":
            failed.append(f"the Fisher trace's detection against PGD at ε = "
                          f"{t['strong_eps']}: its AUC {t['strong_verdict']} "
                          f"({t['strong_auc']})")  # fmt: skip
        failed_mgs = not self.detects(MGS)
        why = []
        if failed_mgs and self.detects(FISHER):
            why.append(f"the approximate FIM is not the same as K. Its trace is tr(H K(x)), "
                       f"the kernel weighted by the softmax's curvature H (checked to a "
                       f"relative {t['identity_gap']}), which is large near a decision boundary: "
                       f"it ranks inputs like one minus the confidence (Spearman "
                       f"{t['rho_confidence']}), and unlike tr K(x) (Spearman "
                       f"{t['rho_kernel']}). The raw tr K(x) has no such factor")  # fmt: skip
        if detection(strong_auc) != "detects" and self.strong_confidence["PGD"] > \
                self.strong_confidence["clean"]:  # fmt: skip
            why.append(
                f"at ε = {t['strong_eps']} PGD makes the network confidently wrong "
                f"(accuracy {t['strong_acc']}, mean confidence {t['strong_conf_pgd']} "
                f"against {t['strong_conf_clean']} on clean digits), where H is small"
            )
        return {"reproduced": "; ".join(held) if held else "neither claim",
                "not_reproduced": "; ".join(failed) if failed else "nothing at this size",
                "why_not": "; and ".join(why) if why else
                ("nothing to explain" if not failed else "we don't know yet")}  # fmt: skip


def adversarial_findings(
    eps: float,
    accuracy: Mapping[str, float],
    aucs: pd.DataFrame,
    identity_gap: float,
    fisher_confidence_rho: float,
    fisher_kernel_rho: float,
    sweep: pd.DataFrame,
    strong_confidence: Mapping[str, float],
    adaptive: pd.DataFrame,
) -> AdversarialFindings:
    """The chapter's findings from its own measurements.

    Parameters
    ----------
    eps : float
        The attack budget of the main comparison.
    accuracy : mapping
        Input kind (``"clean"``, ``"random signs"``, ``"FGSM"``, ``"PGD"``) -> accuracy.
    aucs : pandas.DataFrame, shape (3, n_kinds)
        AUC against clean inputs: index the scores :data:`MGS`, :data:`FISHER`,
        :data:`CONFIDENCE`; columns the perturbations.
    identity_gap : float
        Largest relative difference between tr F(x) and tr(H K(x)) over the inputs checked.
    fisher_confidence_rho, fisher_kernel_rho : float
        Spearman correlations over all inputs of tr F(x) with 1 - confidence and with tr K(x).
    sweep : pandas.DataFrame
        Index ``(attack, eps)``; columns ``accuracy`` and each score's AUC.
    strong_confidence : mapping
        ``"clean"`` and ``"PGD"`` -> mean confidence at the largest eps of ``sweep``.
    adaptive : pandas.DataFrame
        Index: the score the attack hides from; columns ``mu, accuracy, confidence, not
        fooled, confidence, clean, AUC, plain PGD, fooled, AUC, hiding, fooled, AUC, hiding,
        all``.
    """
    return AdversarialFindings(
        float(eps), {k: float(v) for k, v in accuracy.items()}, aucs, float(identity_gap),
        float(fisher_confidence_rho), float(fisher_kernel_rho), sweep,
        {k: float(v) for k, v in strong_confidence.items()}, adaptive,
    )  # fmt: skip
