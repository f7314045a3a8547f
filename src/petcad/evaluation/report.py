"""Write a comparison's report: table.csv, table.md, predictions.csv, roc.png, calibration.png,
settings.json and a self-contained report.html (images inlined), in English or Chinese.

Every file is written atomically (:mod:`petcad.io.atomic`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from petcad.evaluation.calibration import reliability_curve
from petcad.evaluation.confusion import CONFUSION_METRICS
from petcad.fonts import EMBEDDED_FAMILY
from petcad.io.atomic import atomic_path, write_bytes, write_text

METRICS = CONFUSION_METRICS + ("AUC",)

TEXT = {
    "en": {
        "title": "petcad comparison report",
        "table": "Results (mean over repeats; 95 % confidence intervals)",
        "method": "method", "classifier": "classifier",
        "p": "p vs best (paired DeLong)", "brier": "Brier",
        "auc_clu": "AUC 95 % CI (patient bootstrap)",
        "roc": "ROC curves (vertical average over repeats)",
        "calibration": "Calibration (reliability; all repeats)",
        "fpr": "1 - specificity", "tpr": "sensitivity",
        "pred": "predicted probability of malignancy", "obs": "observed fraction malignant",
        "ideal": "ideal",
        "settings": "Settings", "data": "Data", "versions": "Software versions", "timings": "Timings (s)",
        "notes": "Notes and warnings", "protocol": "Protocol",
        "protocol_text": (
            "Repeated stratified group k-fold with patients as groups: no patient is in the training and test "
            "set of one fold; every method sees the same folds. Classical methods: median imputation, "
            "standardisation, hyper-parameters chosen by inner patient-grouped cross-validation on the training "
            "lesions, decision threshold by Youden's J on the inner out-of-fold training predictions. CNN "
            "methods: threshold 0.5 (class-balanced training). Per repeat, the pooled out-of-fold predictions "
            "give one AUC and one confusion matrix; the table shows the mean over repeats. Intervals: Wilson "
            "(one repeat's denominator) and DeLong (mean per-repeat variance); they assume independent lesions, "
            "which lesions of one patient are not: the patient-cluster bootstrap interval of the AUC does not "
            "assume it. p: paired DeLong test against the method with the highest AUC."),
        "reduced": "Reduced protocol",
        "none": "none",
    },
    "zh": {
        "title": "petcad 方法比较报告",
        "table": "结果（各次重复的平均值；95 % 置信区间）",
        "method": "方法", "classifier": "分类器",
        "p": "与最佳方法比较的 p 值（配对 DeLong 检验）", "brier": "Brier 分数",
        "auc_clu": "AUC 95 % 置信区间（按患者 bootstrap）",
        "roc": "ROC 曲线（各次重复的纵向平均）",
        "calibration": "校准曲线（可靠性图；所有重复）",
        "fpr": "1 - 特异度", "tpr": "敏感度",
        "pred": "预测的恶性概率", "obs": "实际恶性比例",
        "ideal": "理想",
        "settings": "设置", "data": "数据", "versions": "软件版本", "timings": "用时（秒）",
        "notes": "说明与警告", "protocol": "验证方案",
        "protocol_text": (
            "以患者为分组的重复分层分组 k 折交叉验证：同一患者不会同时出现在某一折的训练集和测试集中；所有方法使用相同的折。"
            "传统方法：中位数插补、标准化，超参数在训练病灶上通过内层按患者分组的交叉验证选择，决策阈值由内层训练集折外预测的"
            "约登指数确定。CNN 方法：阈值 0.5（类别平衡训练）。每次重复中，所有病灶的折外预测汇总得到一个 AUC 和一个混淆矩阵；"
            "表中为各次重复的平均值。区间：Wilson 区间（一次重复的分母）和 DeLong 区间（各次重复方差的平均）；二者假设病灶相互独立，"
            "而同一患者的病灶并不独立：按患者 bootstrap 的 AUC 区间不依赖该假设。p 值：与 AUC 最高的方法进行配对 DeLong 检验。"),
        "reduced": "缩减的验证方案",
        "none": "无",
    },
}
METRIC_NAMES = {
    "en": {"TPR": "TPR", "SPC": "SPC", "PPV": "PPV", "NPV": "NPV", "ACC": "ACC", "AUC": "AUC"},
    "zh": {"TPR": "敏感度 TPR", "SPC": "特异度 SPC", "PPV": "阳性预测值 PPV", "NPV": "阴性预测值 NPV",
           "ACC": "准确率 ACC", "AUC": "AUC"},
}
METHOD_NAMES_ZH = {
    "rf": "随机森林", "svm": "支持向量机（RBF）", "adaboost": "AdaBoost", "mlp": "BP 神经网络（两个隐藏层）",
    "cnn": "2.5D 卷积神经网络（wang2017）", "multiview": "多视图 CNN", "hybrid": "混合 CNN + 诊断特征",
    "cnn-svm": "CNN 深度特征 + SVM", "cnn-rf": "CNN 深度特征 + 随机森林",
}


def method_name(method: str, lang: str) -> str:
    from petcad.evaluation.compare import METHOD_LABELS

    return METHOD_NAMES_ZH.get(method, method) if lang == "zh" else METHOD_LABELS.get(method, method)


def _fmt(v: float, nd: int = 3) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def _fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# ----------------------------------------------------------------------------- tables
TABLE_COLUMNS = ["method"] + [c for m in METRICS for c in (m, f"{m}_lo", f"{m}_hi")] + [
    "AUC_clu_lo", "AUC_clu_hi", "brier", "p_vs_best"]


def write_table_csv(path, rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_COLUMNS)
        for r in rows:
            w.writerow([r["method"]] + [("" if math.isnan(r[c]) else f"{r[c]:.6f}") for c in TABLE_COLUMNS[1:]])


def table_markdown(rows, lang: str = "en") -> str:
    t = TEXT[lang]
    head = [t["classifier"]] + [METRIC_NAMES[lang][m] for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([method_name(r["method"], lang)] + [_fmt(r[m]) for m in METRICS]) + " |")
    lines += ["", "| " + " | ".join([t["classifier"]] + [f"{METRIC_NAMES[lang][m]} 95 % CI" for m in METRICS]
                                   + [t["auc_clu"], t["brier"], t["p"]]) + " |",
              "|" + "---|" * (len(METRICS) + 4)]
    for r in rows:
        cis = [f"{_fmt(r[m + '_lo'])}-{_fmt(r[m + '_hi'])}" for m in METRICS]
        lines.append("| " + " | ".join([method_name(r["method"], lang)] + cis + [
            f"{_fmt(r['AUC_clu_lo'])}-{_fmt(r['AUC_clu_hi'])}", _fmt(r["brier"]), _fmt_p(r["p_vs_best"])]) + " |")
    return "\n".join(lines) + "\n"


def table_text(rows) -> str:
    """The table for a terminal (English)."""
    head = f"{'method':<10}" + "".join(f"{m:>7}" for m in METRICS) + f"{'AUC 95% CI':>15}{'p vs best':>11}"
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r['method']:<10}" + "".join(f"{r[m]:>7.3f}" for m in METRICS)
                   + f"{_fmt(r['AUC_lo']) + '-' + _fmt(r['AUC_hi']):>15}{_fmt_p(r['p_vs_best']):>11}")
    return "\n".join(out)


def write_predictions_csv(path, result) -> None:
    L = result.lesions
    fold_of = np.empty((result.settings.n_repeats, L.y.size), dtype=int)
    for f in result.folds:
        fold_of[f.repeat, f.test] = f.fold
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "lesion_id", "label", "method", "repeat", "fold", "probability", "threshold",
                    "prediction"])
        for m, P in result.probabilities.items():
            thr = result.thresholds[m]
            for r in range(P.shape[0]):
                for i in range(P.shape[1]):
                    k = fold_of[r, i]
                    w.writerow([L.patient_id[i], L.lesion_id[i], L.label[i], m, r, k, f"{P[r, i]:.6f}",
                                f"{thr[r, k]:.6f}", int(result.predictions[m][r, i])])


# ----------------------------------------------------------------------------- figures
def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _setup_matplotlib(lang: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if lang == "zh":
        from petcad.i18n import use_cjk_font

        use_cjk_font()
    return plt


def roc_png(result, lang: str = "en") -> bytes:
    from sklearn.metrics import roc_curve

    plt = _setup_matplotlib(lang)
    t = TEXT[lang]
    grid = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    rows = {r["method"]: r for r in result.table}
    for m, P in result.probabilities.items():
        tprs = []
        for r in range(P.shape[0]):
            fpr, tpr, _ = roc_curve(result.lesions.y, P[r])
            tprs.append(np.interp(grid, fpr, tpr))
        mean = np.mean(tprs, axis=0)
        mean[0] = 0.0
        row = rows[m]
        ax.plot(grid, mean, lw=1.8, label=f"{method_name(m, lang)}: AUC {row['AUC']:.3f} "
                                          f"({row['AUC_lo']:.3f}-{row['AUC_hi']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set_xlabel(t["fpr"])
    ax.set_ylabel(t["tpr"])
    ax.set_title(t["roc"])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    data = _figure_bytes(fig)
    plt.close(fig)
    return data


def calibration_png(result, lang: str = "en") -> bytes:
    plt = _setup_matplotlib(lang)
    t = TEXT[lang]
    rows = {r["method"]: r for r in result.table}
    fig, ax = plt.subplots(figsize=(6, 5.5))
    y = result.lesions.y
    for m, P in result.probabilities.items():
        mp, fo, _ = reliability_curve(np.tile(y, P.shape[0]), P.ravel(), n_bins=10)
        ax.plot(mp, fo, marker="o", ms=3, lw=1.5, label=f"{method_name(m, lang)}: {t['brier']} {rows[m]['brier']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label=t["ideal"])
    ax.set_xlabel(t["pred"])
    ax.set_ylabel(t["obs"])
    ax.set_title(t["calibration"])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.6)
    data = _figure_bytes(fig)
    plt.close(fig)
    return data


# ----------------------------------------------------------------------------- html
def _kv_table(d: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v))}</td></tr>"
                   for k, v in d.items())
    return f"<table class='kv'>{rows}</table>"


def report_html(result, roc: bytes, cal: bytes, lang: str = "en", extra_notes: list[str] | None = None) -> str:
    t = TEXT[lang]
    head = [t["classifier"]] + [METRIC_NAMES[lang][m] for m in METRICS] + [t["auc_clu"], t["brier"], t["p"]]
    body = []
    for r in result.table:
        cells = [html.escape(method_name(r["method"], lang))]
        for m in METRICS:
            cells.append(f"{_fmt(r[m])}<br><small>{_fmt(r[m + '_lo'])}-{_fmt(r[m + '_hi'])}</small>")
        cells += [f"{_fmt(r['AUC_clu_lo'])}-{_fmt(r['AUC_clu_hi'])}", _fmt(r["brier"]), _fmt_p(r["p_vs_best"])]
        cls = " class='best'" if r["method"] == result.best else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = ("<table class='res'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
             + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    notes = list(extra_notes or []) + list(result.notes)
    notes_html = "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else f"<p>{t['none']}</p>"
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    settings = result.settings.as_dict()
    page = f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{html.escape(t['title'])}</title>
<style>
/*@font-face*/
body {{ font-family: "{EMBEDDED_FAMILY}", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 4px 8px; text-align: center; font-size: 14px; }}
table.kv th {{ text-align: left; background: #f3f3f3; }} table.kv td {{ text-align: left; }}
tr.best {{ background: #eef6ee; }} small {{ color: #666; }}
img {{ max-width: 48%; margin-right: 1%; vertical-align: top; }}
</style></head><body>
<h1>{html.escape(t['title'])}</h1>
<h2>{html.escape(t['table'])}</h2>
{table}
<h2>{html.escape(t['roc'])} / {html.escape(t['calibration'])}</h2>
<img alt="ROC" src="data:image/png;base64,{b64(roc)}"><img alt="calibration" src="data:image/png;base64,{b64(cal)}">
<h2>{html.escape(t['protocol'])}</h2><p>{html.escape(t['protocol_text'])}</p>
<h2>{html.escape(t['notes'])}</h2>{notes_html}
<h2>{html.escape(t['data'])}</h2>{_kv_table(result.summary)}
<h2>{html.escape(t['settings'])}</h2>{_kv_table(settings)}
<h2>{html.escape(t['timings'])}</h2>{_kv_table({k: round(v, 2) for k, v in result.timings.items()})}
<h2>{html.escape(t['versions'])}</h2>{_kv_table(result.versions)}
</body></html>
"""
    return embed_cjk_font(page) if lang == "zh" else page


def embed_cjk_font(page: str) -> str:
    """``page`` with an inlined WOFF2 subset of Noto Sans CJK SC holding every non-ASCII character it shows.

    So the Chinese report reads on a machine without CJK system fonts (see
    :mod:`petcad.fonts`). The page must contain the ``/*@font-face*/`` marker in its style sheet.
    """
    from petcad.fonts import font_face_css

    return page.replace("/*@font-face*/", font_face_css(html.unescape(page)), 1)


def write_report(result, out_dir, lang: str = "en", extra_notes: list[str] | None = None) -> dict[str, Path]:
    """Write every file of the report into ``out_dir``; returns their paths by name."""
    from petcad.i18n import check_lang

    check_lang(lang)
    if getattr(result, "multiclass", False):  # more than two labels
        from petcad.evaluation.report_multiclass import write_report as write_multiclass

        return write_multiclass(result, out_dir, lang, extra_notes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {n: out / n for n in ("table.csv", "table.md", "predictions.csv", "roc.png", "calibration.png",
                                  "settings.json", "report.html")}
    write_table_csv(paths["table.csv"], result.table)
    write_text(paths["table.md"], table_markdown(result.table, lang))
    write_predictions_csv(paths["predictions.csv"], result)
    roc = roc_png(result, lang)
    cal = calibration_png(result, lang)
    write_bytes(paths["roc.png"], roc)
    write_bytes(paths["calibration.png"], cal)
    meta = {"settings": result.settings.as_dict(), "summary": result.summary, "timings": result.timings,
            "versions": result.versions, "notes": list(extra_notes or []) + list(result.notes), "best": result.best,
            "lang": lang}
    write_text(paths["settings.json"], json.dumps(meta, indent=2, ensure_ascii=False, default=str))
    write_text(paths["report.html"], report_html(result, roc, cal, lang, extra_notes))
    return paths
