"""The report of a K-class comparison (more than two labels), in English or Chinese.

Files (atomic writes): ``table.csv`` (:func:`petcad.evaluation.multiclass.table_columns`),
``table.md``, ``confusion.csv`` (method, true, predicted, mean count over repeats),
``predictions.csv`` (one ``p_<label>`` per label, the predicted label), ``roc.png`` (one-vs-rest
ROC curves, one panel per label), ``calibration.png`` (one-vs-rest reliability, all labels
pooled), ``settings.json`` and a self-contained ``report.html`` with the K x K confusion table
of every method. The binary report is :mod:`petcad.evaluation.report`.
"""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path

import numpy as np

from petcad.evaluation import report as R
from petcad.evaluation.multiclass import table_columns
from petcad.i18n import label_name
from petcad.io.atomic import atomic_path, write_bytes, write_text

TEXT = {
    "en": {
        "labels": "Labels (K-class comparison)",
        "overall": "Overall (mean over repeats; 95 % confidence intervals)",
        "per_class": "Per label: sensitivity (Wilson 95 % CI) and one-vs-rest AUC (DeLong 95 % CI)",
        "acc": "accuracy", "macro": "macro AUC (mean of one-vs-rest)", "macro_ci": "macro AUC 95 % CI (DeLong)",
        "sens": "sensitivity", "ovr": "AUC one-vs-rest",
        "brier": "Brier (multi-class)",
        "confusion": "Confusion tables (rows: true label, columns: predicted label; mean counts over repeats)",
        "true": "true \\ predicted",
        "roc": "One-vs-rest ROC curves (vertical average over repeats)",
        "calibration": "Calibration (one-vs-rest, all labels pooled; all repeats)",
        "pred": "predicted probability of the label", "obs": "observed fraction with the label",
        "protocol_text": (
            "K-class comparison: every classifier and network predicts a probability for each label; the "
            "predicted label is the most probable one. Repeated stratified group k-fold with patients as groups "
            "(no patient in the training and test set of one fold; every method sees the same folds; every "
            "training fold holds every label). Classical methods: median imputation, standardisation, "
            "hyper-parameters chosen on the macro one-vs-rest AUC of inner patient-grouped cross-validation on "
            "the training lesions. One-vs-rest AUC of a label: its lesions against all others, scored by its "
            "probability, with the DeLong interval; macro AUC: their mean, with a DeLong-type interval (the "
            "structural components of the K one-vs-rest AUCs summed per lesion, labels as strata). Sensitivity "
            "per label and accuracy with Wilson intervals. Intervals assume independent lesions; the "
            "patient-cluster bootstrap interval of the macro AUC does not. p: paired test of the macro AUC "
            "against the method with the highest macro AUC."),
    },
    "zh": {
        "labels": "标签（多分类比较）",
        "overall": "总体结果（各次重复的平均值；95 % 置信区间）",
        "per_class": "各标签：敏感度（Wilson 95 % 置信区间）与一对其余 AUC（DeLong 95 % 置信区间）",
        "acc": "准确率", "macro": "宏平均 AUC（一对其余的平均）", "macro_ci": "宏平均 AUC 95 % 置信区间（DeLong）",
        "sens": "敏感度", "ovr": "一对其余 AUC",
        "brier": "Brier 分数（多分类）",
        "confusion": "混淆矩阵（行：真实标签，列：预测标签；各次重复的平均计数）",
        "true": "真实 \\ 预测",
        "roc": "一对其余 ROC 曲线（各次重复的纵向平均）",
        "calibration": "校准曲线（一对其余，所有标签合并；所有重复）",
        "pred": "预测的该标签概率", "obs": "实际属于该标签的比例",
        "protocol_text": (
            "多分类（K 类）比较：每个分类器和网络为每个标签输出一个概率，预测标签为概率最大者。以患者为分组的重复分层分组 k 折交叉验证"
            "（同一患者不会同时出现在某一折的训练集和测试集中；所有方法使用相同的折；每个训练折包含所有标签）。传统方法：中位数插补、"
            "标准化，超参数在训练病灶上通过内层按患者分组交叉验证的宏平均一对其余 AUC 选择。某标签的一对其余 AUC：该标签病灶对其余所有"
            "病灶，以该标签的概率评分，附 DeLong 区间；宏平均 AUC：各标签一对其余 AUC 的平均，附 DeLong 型区间（K 个一对其余 AUC 的"
            "结构分量按病灶相加，以标签分层）。各标签敏感度与准确率附 Wilson 区间。区间假设病灶相互独立；按患者 bootstrap 的宏平均 AUC "
            "区间不依赖该假设。p 值：与宏平均 AUC 最高的方法进行配对检验。"),
    },
}


def _ci(r: dict, key: str) -> str:
    return f"{R._fmt(r[key + '_lo'])}-{R._fmt(r[key + '_hi'])}"


def _csv_value(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6f}"


def write_table_csv(path, rows, classes) -> None:
    cols = table_columns(classes)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow([r["method"]] + [_csv_value(r[c]) for c in cols[1:]])


def write_confusion_csv(path, result) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "true", "predicted", "mean_count"])
        for m, cm in result.confusion.items():
            for i, a in enumerate(result.classes):
                for j, b in enumerate(result.classes):
                    w.writerow([m, a, b, f"{cm[i, j]:.3f}"])


def write_predictions_csv(path, result) -> None:
    L, classes = result.lesions, result.classes
    fold_of = np.empty((result.settings.n_repeats, L.y.size), dtype=int)
    for f in result.folds:
        fold_of[f.repeat, f.test] = f.fold
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "lesion_id", "label", "method", "repeat", "fold"] + [f"p_{c}" for c in classes]
                   + ["prediction"])
        for m, P in result.probabilities.items():
            for r in range(P.shape[0]):
                for i in range(P.shape[1]):
                    w.writerow([L.patient_id[i], L.lesion_id[i], L.label[i], m, r, fold_of[r, i]]
                               + [f"{v:.6f}" for v in P[r, i]] + [classes[int(result.predictions[m][r, i])]])


# ----------------------------------------------------------------------------- text
def confusion_markdown(cm: np.ndarray, classes, lang: str) -> str:
    t = TEXT[lang]
    names = [label_name(c, lang) for c in classes]
    lines = ["| " + " | ".join([t["true"]] + names) + " |", "|" + "---|" * (len(classes) + 1)]
    for i, a in enumerate(names):
        lines.append("| " + " | ".join([a] + [f"{v:.1f}" for v in cm[i]]) + " |")
    return "\n".join(lines)


def table_markdown(result, lang: str = "en") -> str:
    t, T = TEXT[lang], R.TEXT[lang]
    classes = result.classes
    names = [label_name(c, lang) for c in classes]
    head = [T["classifier"], t["acc"], t["macro"], t["macro_ci"], T["auc_clu"], t["brier"], T["p"]]
    lines = [f"### {t['overall']}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result.table:
        lines.append("| " + " | ".join([R.method_name(r["method"], lang), f"{R._fmt(r['ACC'])} ({_ci(r, 'ACC')})",
                                        R._fmt(r["AUC"]), _ci(r, "AUC"), _ci(r, "AUC_clu"), R._fmt(r["brier"]),
                                        R._fmt_p(r["p_vs_best"])]) + " |")
    head = [T["classifier"]] + [f"{n}: {t['sens']}" for n in names] + [f"{n}: {t['ovr']}" for n in names]
    lines += ["", f"### {t['per_class']}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result.table:
        cells = [f"{R._fmt(r[f'TPR_{c}'])} ({_ci(r, f'TPR_{c}')})" for c in classes]
        cells += [f"{R._fmt(r[f'AUC_{c}'])} ({_ci(r, f'AUC_{c}')})" for c in classes]
        lines.append("| " + " | ".join([R.method_name(r["method"], lang)] + cells) + " |")
    lines += ["", f"### {t['confusion']}"]
    for m, cm in result.confusion.items():
        lines += ["", f"**{R.method_name(m, lang)}**", "", confusion_markdown(cm, classes, lang)]
    return "\n".join(lines) + "\n"


def table_text(result) -> str:
    """The K-class table for a terminal (English): accuracy, macro AUC, per-label sensitivity and one-vs-rest AUC."""
    classes = result.classes
    w = max(8, *(len(c) + 5 for c in classes))
    head = (f"{'method':<10}{'ACC':>7}{'macroAUC':>9}{'95% CI':>14}{'p vs best':>10}"
            + "".join(f"{'TPR ' + c:>{w}}" for c in classes) + "".join(f"{'AUC ' + c:>{w}}" for c in classes))
    out = [head, "-" * len(head)]
    for r in result.table:
        out.append(f"{r['method']:<10}{r['ACC']:>7.3f}{r['AUC']:>9.3f}{_ci(r, 'AUC'):>14}{R._fmt_p(r['p_vs_best']):>10}"
                   + "".join(f"{r[f'TPR_{c}']:>{w}.3f}" for c in classes)
                   + "".join(f"{r[f'AUC_{c}']:>{w}.3f}" for c in classes))
    best = result.confusion.get(result.best)
    if best is not None:
        out += ["", f"confusion table of {result.best} (rows true, columns predicted; mean over repeats):"]
        out.append(" " * w + "".join(f"{c:>{w}}" for c in classes))
        for i, c in enumerate(classes):
            out.append(f"{c:<{w}}" + "".join(f"{v:>{w}.1f}" for v in best[i]))
    return "\n".join(out)


# ----------------------------------------------------------------------------- figures
def roc_png(result, lang: str = "en") -> bytes:
    from sklearn.metrics import roc_curve

    plt = R._setup_matplotlib(lang)
    T, t = R.TEXT[lang], TEXT[lang]
    classes, y = result.classes, result.lesions.y
    grid = np.linspace(0, 1, 201)
    fig, axes = plt.subplots(1, len(classes), figsize=(4.6 * len(classes), 4.6), squeeze=False)
    rows = {r["method"]: r for r in result.table}
    for k, (ax, c) in enumerate(zip(axes[0], classes)):
        for m, P in result.probabilities.items():
            tprs = []
            for r in range(P.shape[0]):
                fpr, tpr, _ = roc_curve((y == k).astype(int), P[r, :, k])
                tprs.append(np.interp(grid, fpr, tpr))
            mean = np.mean(tprs, axis=0)
            mean[0] = 0.0
            ax.plot(grid, mean, lw=1.5, label=f"{R.method_name(m, lang)}: {rows[m][f'AUC_{c}']:.3f}")
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
        ax.set_title(f"{label_name(c, lang)} ({t['ovr']})")
        ax.set_xlabel(T["fpr"])
        ax.set_ylabel(T["tpr"])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(t["roc"])
    data = R._figure_bytes(fig)
    plt.close(fig)
    return data


def calibration_png(result, lang: str = "en") -> bytes:
    from petcad.evaluation.calibration import reliability_curve

    plt = R._setup_matplotlib(lang)
    t, T = TEXT[lang], R.TEXT[lang]
    rows = {r["method"]: r for r in result.table}
    y = result.lesions.y
    K = len(result.classes)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for m, P in result.probabilities.items():
        onehot = (np.tile(y, P.shape[0])[:, None] == np.arange(K)[None, :]).astype(int)
        mp, fo, _ = reliability_curve(onehot.ravel(), P.reshape(-1, K).ravel(), n_bins=10)
        ax.plot(mp, fo, marker="o", ms=3, lw=1.5, label=f"{R.method_name(m, lang)}: {t['brier']} {rows[m]['brier']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label=T["ideal"])
    ax.set_xlabel(t["pred"])
    ax.set_ylabel(t["obs"])
    ax.set_title(t["calibration"])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.6)
    data = R._figure_bytes(fig)
    plt.close(fig)
    return data


# ----------------------------------------------------------------------------- html
def _html_table(head: list[str], rows: list[list[str]], best_row: int | None = None) -> str:
    body = "".join(f"<tr{' class=best' if i == best_row else ''}>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>"
                   for i, r in enumerate(rows))
    return ("<table class='res'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + body + "</tbody></table>")


def _cell(r: dict, key: str) -> str:
    return f"{R._fmt(r[key])}<br><small>{_ci(r, key)}</small>"


def result_tables_html(result, lang: str) -> str:
    t, T = TEXT[lang], R.TEXT[lang]
    classes = result.classes
    names = [label_name(c, lang) for c in classes]
    best = [r["method"] for r in result.table].index(result.best)
    overall = _html_table(
        [T["classifier"], t["acc"], t["macro"], T["auc_clu"], t["brier"], T["p"]],
        [[html.escape(R.method_name(r["method"], lang)), _cell(r, "ACC"), _cell(r, "AUC"), _ci(r, "AUC_clu"),
          R._fmt(r["brier"]), R._fmt_p(r["p_vs_best"])] for r in result.table], best)
    per = _html_table(
        [T["classifier"]] + [f"{n}: {t['sens']}" for n in names] + [f"{n}: {t['ovr']}" for n in names],
        [[html.escape(R.method_name(r["method"], lang))] + [_cell(r, f"TPR_{c}") for c in classes]
         + [_cell(r, f"AUC_{c}") for c in classes] for r in result.table], best)
    conf = []
    for m, cm in result.confusion.items():
        rows = [[f"<b>{html.escape(a)}</b>"] + [f"{v:.1f}" for v in cm[i]] for i, a in enumerate(names)]
        conf.append(f"<h3>{html.escape(R.method_name(m, lang))}</h3>" + _html_table([t["true"]] + names, rows))
    return (f"<h2>{html.escape(t['overall'])}</h2>{overall}<h2>{html.escape(t['per_class'])}</h2>{per}"
            f"<h2>{html.escape(t['confusion'])}</h2>{''.join(conf)}")


def report_html(result, roc: bytes, cal: bytes, lang: str = "en", extra_notes: list[str] | None = None) -> str:
    import base64

    t, T = TEXT[lang], R.TEXT[lang]
    notes = list(extra_notes or []) + list(result.notes)
    notes_html = "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else f"<p>{T['none']}</p>"
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    labels = ", ".join(label_name(c, lang) for c in result.classes)
    page = f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{html.escape(T['title'])}</title>
<style>
{R.page_style(1200, "img { max-width: 100%; margin-bottom: 1em; vertical-align: top; } img.cal { max-width: 48%; }")}
</style></head><body>
<h1>{html.escape(T['title'])}</h1>
<p>{html.escape(t['labels'])}: {html.escape(labels)}</p>
{result_tables_html(result, lang)}
<h2>{html.escape(t['roc'])}</h2>
<img alt="ROC" src="data:image/png;base64,{b64(roc)}">
<h2>{html.escape(t['calibration'])}</h2><img class="cal" alt="calibration" src="data:image/png;base64,{b64(cal)}">
<h2>{html.escape(T['protocol'])}</h2><p>{html.escape(t['protocol_text'])}</p>
<h2>{html.escape(T['notes'])}</h2>{notes_html}
<h2>{html.escape(T['data'])}</h2>{R._kv_table(result.summary)}
<h2>{html.escape(T['settings'])}</h2>{R._kv_table(result.settings.as_dict())}
<h2>{html.escape(T['timings'])}</h2>{R._kv_table({k: round(v, 2) for k, v in result.timings.items()})}
<h2>{html.escape(T['versions'])}</h2>{R._kv_table(result.versions)}
</body></html>
"""
    embed = getattr(R, "embed_cjk_font", None)
    return embed(page) if (lang == "zh" and embed is not None) else page.replace("/*@font-face*/\n", "")


def write_report(result, out_dir, lang: str = "en", extra_notes: list[str] | None = None) -> dict[str, Path]:
    """Every file of the K-class report in ``out_dir``; returns their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {n: out / n for n in ("table.csv", "table.md", "confusion.csv", "predictions.csv", "roc.png",
                                  "calibration.png", "settings.json", "report.html")}
    write_table_csv(paths["table.csv"], result.table, result.classes)
    write_text(paths["table.md"], table_markdown(result, lang))
    write_confusion_csv(paths["confusion.csv"], result)
    write_predictions_csv(paths["predictions.csv"], result)
    roc, cal = roc_png(result, lang), calibration_png(result, lang)
    write_bytes(paths["roc.png"], roc)
    write_bytes(paths["calibration.png"], cal)
    meta = {"settings": result.settings.as_dict(), "summary": result.summary, "timings": result.timings,
            "versions": result.versions, "notes": list(extra_notes or []) + list(result.notes), "best": result.best,
            "classes": list(result.classes), "lang": lang,
            "confusion": {m: np.round(cm, 3).tolist() for m, cm in result.confusion.items()}}
    write_text(paths["settings.json"], json.dumps(meta, indent=2, ensure_ascii=False, default=str))
    write_text(paths["report.html"], report_html(result, roc, cal, lang, extra_notes))
    return paths
