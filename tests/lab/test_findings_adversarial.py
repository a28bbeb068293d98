"""The adversarial chapter's findings, on crafted AUC tables whose verdicts are known."""

import pandas as pd
import pytest

from mgs_teach.lab.findings import adversarial as A
from mgs_teach.lab.findings.adversarial import CONFIDENCE, FISHER, MGS

KINDS = ["random signs", "FGSM", "PGD"]


def aucs(mgs=(0.51, 0.49, 0.52), fisher=(0.56, 0.78, 0.71), confidence=(0.55, 0.78, 0.70)):
    return pd.DataFrame([mgs, fisher, confidence], index=[MGS, FISHER, CONFIDENCE], columns=KINDS)


def sweep(fisher_strong=0.30):
    rows = []
    for attack in ("FGSM", "PGD"):
        for eps, acc, fisher in ((0.05, 0.6, 0.76), (0.1, 0.2, 0.71), (0.2, 0.0, fisher_strong)):
            rows.append({"attack": attack, "eps": eps, "accuracy": acc, MGS: 0.5, FISHER: fisher,
                         CONFIDENCE: fisher})  # fmt: skip
    return pd.DataFrame(rows).set_index(["attack", "eps"])


def adaptive(hidden_fisher=0.51, acc_fisher=0.70):
    rows = [{"hides from": MGS, "mu": 3.0, "accuracy": 0.21, "confidence, not fooled": 0.93,
             "confidence, clean": 0.999, "AUC, plain PGD, fooled": 0.49,
             "AUC, hiding, fooled": 0.45, "AUC, hiding, all": 0.45},
            {"hides from": FISHER, "mu": 0.05, "accuracy": acc_fisher,
             "confidence, not fooled": 1.0, "confidence, clean": 0.99,
             "AUC, plain PGD, fooled": 0.69, "AUC, hiding, fooled": hidden_fisher,
             "AUC, hiding, all": 0.18}]  # fmt: skip
    return pd.DataFrame(rows).set_index("hides from")


ACCURACY = {"clean": 0.92, "random signs": 0.90, "FGSM": 0.23, "PGD": 0.133}


def found(table=None, strong=0.30, conf=(0.926, 0.993), **kw):
    return A.adversarial_findings(
        0.1, ACCURACY, aucs() if table is None else table, 4e-6, 0.98, 0.02, sweep(strong),
        {"clean": conf[0], "PGD": conf[1]}, adaptive(**kw))  # fmt: skip


def test_detection_thresholds():
    assert A.detection(0.6) == "detects" and A.detection(0.59) == "chance"
    assert A.detection(0.41) == "chance" and A.detection(0.4) == "inverted"


def test_fisher_detects_and_mgs_does_not():
    f = found()
    t = f.texts()
    assert f.detects(FISHER) and not f.detects(MGS)
    assert t["mgs"] == "is no better than chance against every perturbation (AUC 0.49 to 0.52)"
    assert t["fisher"] == ("detects FGSM (AUC 0.78) and PGD (AUC 0.71), and is at chance "
                           "against random signs (AUC 0.56)")  # fmt: skip
    assert t["best_fgsm"] == "the Fisher trace tr F(x)"  # the first of a tie
    assert t["best_pgd"] == "the Fisher trace tr F(x)"
    assert t["acc_clean"] == "92.0 %" and t["acc_random_signs"] == "90.0 %"
    assert t["random_verdict"] == "do little"
    assert t["reproduced"].startswith("Martin and Elster's observation")
    assert "Appendix C's reading for MGS" in t["not_reproduced"]
    assert "the MGS trace tr K(x) is no better than chance" in t["not_reproduced"]
    assert "the approximate FIM is not the same as K" in t["why_not"]
    assert "Spearman 0.98" in t["why_not"] and "Spearman 0.02" in t["why_not"]


def test_mgs_detecting_is_reproduced():
    t = found(aucs(mgs=(0.5, 0.8, 0.9))).texts()
    assert "Appendix C's reading for MGS" in t["reproduced"]
    assert "Appendix C's reading for MGS" not in t["not_reproduced"]
    assert t["mgs"] == ("detects FGSM (AUC 0.80) and PGD (AUC 0.90), and is at chance against "
                        "random signs (AUC 0.50)")  # fmt: skip
    assert "not the same as K" not in t["why_not"]


def test_an_inverted_score_says_so():
    t = found(aucs(mgs=(0.7, 0.3, 0.5))).texts()
    assert t["mgs"] == ("detects random signs (AUC 0.70); is at chance against PGD (AUC 0.50); "
                        "scores FGSM (AUC 0.30) below clean inputs")  # fmt: skip


def test_the_strong_attack():
    t = found().texts()
    assert t["fisher_by_eps"] == "0.76 at ε = 0.05, 0.71 at ε = 0.1 and 0.30 at ε = 0.2"
    assert t["strong_eps"] == "0.2" and t["strong_verdict"] == "falls below 0.5"
    assert t["strong_acc"] == "0.0 %"
    assert t["strong_conf_verdict"] == "surer of its answers than on clean digits"
    assert "against PGD at ε = 0.2: its AUC falls below 0.5 (0.30)" in t["not_reproduced"]
    assert "confidently wrong" in t["why_not"]
    t = found(strong=0.7, conf=(0.95, 0.9)).texts()
    assert t["strong_verdict"] == "stays above 0.5"
    assert t["strong_conf_verdict"] == "less sure of its answers than on clean digits"
    assert "ε = 0.2" not in t["not_reproduced"] and "confidently wrong" not in t["why_not"]


def test_the_adaptive_attack():
    t = found().texts()
    assert t["hide_verdict"] == "against both scores"
    assert t["hide_cost"] == "Hiding costs the attacker success"
    assert t["hide_most"] == "the Fisher trace tr F(x)"
    assert t["hide_conf"] == "from 0.990 on the clean digits to 1.000 on the attacked ones"
    assert t["hide_conf_verdict"] == "surer" and t["hide_all_verdict"] == "falls below 0.5"
    t = found(hidden_fisher=0.7, acc_fisher=0.1).texts()
    assert t["hide_verdict"] == "only against the MGS trace tr K(x)"
    assert t["hide_cost"] == "Hiding does not always cost the attacker success"
    assert t["hide_most"] == "the MGS trace tr K(x)"


def test_nothing_failed_says_so():
    t = found(aucs(mgs=(0.5, 0.8, 0.9)), strong=0.7).texts()
    assert t["not_reproduced"] == "nothing at this size"
    assert t["why_not"] == "nothing to explain"


def test_a_failure_with_no_diagnosis_says_we_do_not_know():
    t = found(aucs(mgs=(0.5, 0.5, 0.5), fisher=(0.5, 0.5, 0.5)), strong=0.7).texts()
    assert t["reproduced"] == "neither claim"
    assert t["why_not"] == "we don't know yet"


@pytest.mark.parametrize("name", ["reproduced", "not_reproduced", "why_not"])
def test_box_texts_are_plain_text(name):
    assert "$" not in found().texts()[name]
