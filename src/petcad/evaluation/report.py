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
        "mode_images": "Images only", "mode_masks": "With masks",
        "mode_images_text": ("classical features from petcad's delineation of the images ({rule}, CT soft-tissue "
                             "fallback for non-avid lesions); CNNs on 6 channels (CT and PET planes); no supplied "
                             "mask is used"),
        "mode_masks_text": "classical features from the supplied lesion masks; CNNs on 9 channels (CT, PET and mask planes)",
        "rule_fraction": "PET {fraction:.0%} of SUVmax", "rule_suv": "PET SUV >= {suv:g}",
        "auc_delong": "AUC (95 % CI DeLong)",
        "how": "How to read this table",
        "how_text": (
            "Each row is one method, tested on lesions it was not trained on (patients never shared between the "
            "training and the test lesions). Sensitivity (TPR): the share of malignant lesions called malignant; "
            "specificity (SPC): the share of benign lesions called benign; PPV / NPV: the share of lesions called "
            "malignant / benign that are; accuracy (ACC): the share called right; AUC: the probability that a "
            "malignant lesion gets a higher score than a benign one (0.5 = chance, 1 = perfect), independent of "
            "the threshold. Under each value is its 95 % confidence interval (Wilson for the shares, DeLong for "
            "the AUC). The highlighted row has the highest AUC; p is the paired DeLong test of each method "
            "against it (p < 0.05: the difference is unlikely to be chance). The table's title says what every "
            "method was given: the images only, or the images with the lesion masks."),
        "ci_text": (
            "Two AUC intervals: DeLong's treats every lesion as independent; the patient bootstrap resamples whole "
            "patients, so it is wider when the lesions of one patient resemble each other, and it is the one to "
            "trust when patients have several lesions."),
        "machine": "Machine (threads and device)",
        "estimate": "estimated before the run",
        "yes": "yes", "no": "no", "all": "all",
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
        "mode_images": "仅图像", "mode_masks": "使用掩膜",
        "mode_images_text": "传统方法的特征来自 petcad 在图像上的自动勾画（{rule}，非高摄取病灶用 CT 软组织区域回退）；"
                            "CNN 使用 6 个通道（CT 与 PET 切面）；不使用任何提供的掩膜",
        "mode_masks_text": "传统方法的特征来自提供的病灶掩膜；CNN 使用 9 个通道（CT、PET 与掩膜切面）",
        "rule_fraction": "PET {fraction:.0%} SUVmax 阈值", "rule_suv": "PET SUV >= {suv:g}",
        "auc_delong": "AUC（95 % 置信区间，DeLong）",
        "how": "如何阅读此表",
        "how_text": (
            "每一行是一种方法，在未参与其训练的病灶上测试（同一患者不会同时出现在训练和测试病灶中）。敏感度（TPR）：恶性病灶被判为恶性"
            "的比例；特异度（SPC）：良性病灶被判为良性的比例；阳性 / 阴性预测值（PPV / NPV）：被判为恶性 / 良性的病灶中确为恶性 / "
            "良性的比例；准确率（ACC）：判断正确的比例；AUC：恶性病灶得分高于良性病灶的概率（0.5 = 随机，1 = 完美），与阈值无关。"
            "每个数值下方为其 95 % 置信区间（比例用 Wilson 区间，AUC 用 DeLong 区间）。高亮行的 AUC 最高；p 值为各方法与其比较的"
            "配对 DeLong 检验（p < 0.05：差异不太可能是偶然）。表格标题说明每种方法得到的信息：仅图像，或图像加病灶掩膜。"),
        "ci_text": (
            "两个 AUC 区间：DeLong 区间把每个病灶视为独立；按患者 bootstrap 对整个患者重抽样，当同一患者的病灶彼此相似时更宽，"
            "患者有多个病灶时应以它为准。"),
        "machine": "计算环境（线程与设备）",
        "estimate": "运行前的估计",
        "yes": "是", "no": "否", "all": "全部",
    },
}
#: readable names of the settings, data summary and machine keys in the report (en, zh); others show their key
KEY_NAMES = {
    "mode_title": ("table", "表格"), "mode_description": ("what every method sees", "每种方法所用的信息"),
    "methods": ("methods", "方法"), "n_splits": ("outer folds", "外层折数"), "n_repeats": ("repeats", "重复次数"),
    "seed": ("seed", "随机种子"), "features": ("features (classical methods)", "特征（传统方法）"),
    "inner_splits": ("inner folds (tuning)", "内层折数（调参）"), "cnn_epochs": ("CNN epochs per fold", "每折 CNN 训练轮数"),
    "cnn_samples_per_epoch": ("CNN samples per epoch (at least)", "每轮 CNN 样本数（至少）"),
    "cnn_normalization": ("CNN input scaling", "CNN 输入归一化"),
    "cnn_dihedral": ("CNN plane mirrors / quarter turns", "CNN 切面镜像 / 四分之一旋转"),
    "cnn_dropout": ("CNN dropout", "CNN dropout"),
    "cnn_embedding_loss": ("CNN embedding loss (deep features)", "CNN 嵌入损失（深度特征）"),
    "cnn_embedding_weight": ("CNN embedding loss weight", "CNN 嵌入损失权重"), "n_jobs": ("threads / workers", "线程 / 进程数"),
    "n_boot": ("bootstrap replicates (patients)", "bootstrap 次数（按患者）"), "level": ("confidence level", "置信水平"),
    "positive": ("positive label", "阳性标签"), "labels": ("labels compared", "参与比较的标签"),
    "delineation": ("delineation", "勾画"), "method": ("rule", "规则"),
    "patients": ("patients", "患者数"), "lesions": ("lesions", "病灶数"), "classes": ("labels", "标签"),
    "class_counts": ("lesions per label", "各标签病灶数"),
    "lesions_per_patient_median": ("lesions per patient (median)", "每位患者病灶数（中位数）"),
    "lesions_per_patient_max": ("lesions per patient (max)", "每位患者病灶数（最大）"),
    "threads": ("threads / workers", "线程 / 进程数"), "cpu_count": ("CPU cores", "CPU 核数"),
    "platform": ("platform", "平台"), "machine": ("architecture", "架构"), "device": ("device (CNNs)", "设备（CNN）"),
}
SKIP_KEYS = ("mode",)
METRIC_NAMES = {
    "en": {"TPR": "sensitivity TPR", "SPC": "specificity SPC", "PPV": "PPV", "NPV": "NPV", "ACC": "accuracy ACC",
           "AUC": "AUC"},
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


def table_title(result, lang: str = "en") -> str:
    """The table's title: the mode (images only / with masks) and what every method sees in it."""
    t = TEXT[lang]
    s = result.settings
    mode = getattr(s, "mode", "images")
    if mode == "masks":
        return f"{t['mode_masks']}: {t['mode_masks_text']}"
    d = s.delineation
    rule = t["rule_suv" if d.method == "suv" else "rule_fraction"].format(fraction=d.fraction, suv=d.suv_threshold)
    return f"{t['mode_images']}: {t['mode_images_text'].format(rule=rule)}"


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


def table_markdown(rows, lang: str = "en", title: str | None = None) -> str:
    """The poster's columns, then the intervals, Brier and p; ``title`` (the mode) as a bold first line."""
    t = TEXT[lang]
    head = [t["classifier"]] + [METRIC_NAMES[lang][m] for m in METRICS]
    lines = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([method_name(r["method"], lang)] + [_fmt(r[m]) for m in METRICS]) + " |")
    lines += ["", "| " + " | ".join([t["classifier"]] + [f"{METRIC_NAMES[lang][m]} 95 % CI"
                                                          + (" (DeLong)" if m == "AUC" else "") for m in METRICS]
                                   + [t["auc_clu"], t["brier"], t["p"]]) + " |",
              "|" + "---|" * (len(METRICS) + 4)]
    for r in rows:
        cis = [f"{_fmt(r[m + '_lo'])}-{_fmt(r[m + '_hi'])}" for m in METRICS]
        lines.append("| " + " | ".join([method_name(r["method"], lang)] + cis + [
            f"{_fmt(r['AUC_clu_lo'])}-{_fmt(r['AUC_clu_hi'])}", _fmt(r["brier"]), _fmt_p(r["p_vs_best"])]) + " |")
    return "\n".join(lines) + "\n"


TEXT_LEGEND = (
    "TPR = sensitivity, SPC = specificity, PPV / NPV = positive / negative predictive value, ACC = accuracy.\n"
    "AUC 95% CI: DeLong (lesions as independent) and patient bootstrap (whole patients resampled; wider\n"
    "when a patient's lesions resemble each other). p vs best: paired DeLong test against the best AUC.")


def table_text(rows, legend: bool = True) -> str:
    """The table for a terminal (English), with a legend of its abbreviations and intervals (:data:`TEXT_LEGEND`)."""
    head = (f"{'method':<10}" + "".join(f"{m:>7}" for m in METRICS) + f"{'DeLong CI':>14}{'patient CI':>14}"
            f"{'p vs best':>11}")
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r['method']:<10}" + "".join(f"{r[m]:>7.3f}" for m in METRICS)
                   + f"{_fmt(r['AUC_lo']) + '-' + _fmt(r['AUC_hi']):>14}"
                   + f"{_fmt(r['AUC_clu_lo']) + '-' + _fmt(r['AUC_clu_hi']):>14}{_fmt_p(r['p_vs_best']):>11}")
    return "\n".join(out + (["", TEXT_LEGEND] if legend else []))


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
    fig, ax = plt.subplots(figsize=(6, 5.5))  # the legend goes below the axes, off the curves
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
    # below the axes and their labels, off the curves
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=7, frameon=False)
    data = _figure_bytes(fig)
    plt.close(fig)
    return data


# ----------------------------------------------------------------------------- html
def _kv_value(v, lang: str) -> str:
    """One value as readable HTML: a dict as a nested table, a list comma-separated, yes / no, no JSON."""
    t = TEXT[lang]
    if isinstance(v, dict):
        return _kv_table(v, lang)
    if isinstance(v, (list, tuple)):
        return html.escape(", ".join(map(str, v))) if v else t["all"]
    if isinstance(v, bool):
        return t["yes"] if v else t["no"]
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return html.escape(str(v))


def _kv_table(d: dict, lang: str = "en") -> str:
    """``d`` as a two-column table with readable key names (:data:`KEY_NAMES`)."""
    col = 1 if lang == "zh" else 0
    rows = "".join(f"<tr><th>{html.escape(KEY_NAMES[k][col] if k in KEY_NAMES else str(k))}</th>"
                   f"<td>{_kv_value(v, lang)}</td></tr>" for k, v in d.items() if k not in SKIP_KEYS)
    return f"<table class='kv'>{rows}</table>"


def page_style(max_width_px: int, img_rules: str) -> str:
    """The style sheet of petcad's HTML reports; ``/*@font-face*/`` is where :func:`embed_cjk_font`
    puts the Chinese font subset."""
    return f"""/*@font-face*/
body {{ font-family: "{EMBEDDED_FAMILY}", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; max-width: {max_width_px}px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 4px 8px; text-align: center; font-size: 14px; }}
table.kv th {{ text-align: left; background: #f3f3f3; }} table.kv td {{ text-align: left; }}
tr.best {{ background: #eef6ee; }} small {{ color: #666; }}
{img_rules}"""


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
    head[METRICS.index("AUC") + 1] = t["auc_delong"]
    table = ("<table class='res'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
             + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")
    notes = list(extra_notes or []) + list(result.notes)
    notes_html = "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else f"<p>{t['none']}</p>"
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    settings = result.settings.as_dict()
    settings = {k: settings.pop(k) for k in ("mode_title", "mode_description") if k in settings} | settings
    timings = {k: round(v, 2) for k, v in result.timings.items()}
    if not math.isnan(getattr(result, "estimate_s", float("nan"))):
        timings[t["estimate"]] = round(result.estimate_s, 1)
    page = f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{html.escape(t['title'])}</title>
<style>
{page_style(1100, "img { max-width: 48%; margin-right: 1%; vertical-align: top; }")}
</style></head><body>
<h1>{html.escape(t['title'])}</h1>
<h2>{html.escape(t['table'])}</h2>
<p class='title'><b>{html.escape(table_title(result, lang))}</b></p>
{table}
<h3>{html.escape(t['how'])}</h3><p>{html.escape(t['how_text'])}</p><p>{html.escape(t['ci_text'])}</p>
<h2>{html.escape(t['roc'])} / {html.escape(t['calibration'])}</h2>
<img alt="ROC" src="data:image/png;base64,{b64(roc)}"><img alt="calibration" src="data:image/png;base64,{b64(cal)}">
<h2>{html.escape(t['protocol'])}</h2><p>{html.escape(t['protocol_text'])}</p>
<h2>{html.escape(t['notes'])}</h2>{notes_html}
<h2>{html.escape(t['data'])}</h2>{_kv_table(result.summary, lang)}
<h2>{html.escape(t['settings'])}</h2>{_kv_table(settings, lang)}
<h2>{html.escape(t['machine'])}</h2>{_kv_table(getattr(result, "machine", {}), lang)}
<h2>{html.escape(t['timings'])}</h2>{_kv_table(timings, lang)}
<h2>{html.escape(t['versions'])}</h2>{_kv_table(result.versions, lang)}
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
    write_text(paths["table.md"], table_markdown(result.table, lang, title=table_title(result, lang)))
    write_predictions_csv(paths["predictions.csv"], result)
    roc = roc_png(result, lang)
    cal = calibration_png(result, lang)
    write_bytes(paths["roc.png"], roc)
    write_bytes(paths["calibration.png"], cal)
    meta = {"mode": result.settings.mode, "title": table_title(result, "en"), "settings": result.settings.as_dict(),
            "summary": result.summary, "timings": result.timings,
            "estimated_s": None if math.isnan(result.estimate_s) else round(result.estimate_s, 1),
            "machine": result.machine, "versions": result.versions,
            "notes": list(extra_notes or []) + list(result.notes), "best": result.best, "lang": lang}
    write_text(paths["settings.json"], json.dumps(meta, indent=2, ensure_ascii=False, default=str))
    write_text(paths["report.html"], report_html(result, roc, cal, lang, extra_notes))
    return paths
