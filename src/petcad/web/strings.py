"""The viewer's words in English and Chinese (labels and planes from :mod:`petcad.i18n`)."""

from __future__ import annotations

from petcad import i18n

_UI = {
    "en": {
        "title": "petcad viewer", "studies": "Studies", "patient": "patient", "lesions": "lesions",
        "lesion": "lesion", "label": "label", "prediction": "prediction", "segmentation": "segmentation",
        "seg_lesions": "segmented lesions", "window": "CT window", "lung": "lung", "mediastinum": "mediastinum",
        "bone": "bone", "pet_window": "PET window (SUV)", "opacity": "PET opacity", "mip": "PET MIP",
        "cursor": "cursor", "analyse": "Analyse at crosshair", "analysis": "Lesion analysis",
        "transform": "2.5D slicing…", "saliency": "Saliency", "hide_saliency": "Hide saliency",
        "probability": "probability", "without_tta": "without TTA", "with_tta": "with TTA (729 variants)",
        "features": "diagnostic features", "shift": "Shift (pixels)", "rotate": "Rotate (degrees)",
        "hint": "Stay within -10..10 pixels for the shifts.", "submit": "Submit", "cancel": "Cancel",
        "progress": "2.5D slicing progress", "share": "attribution share", "reports": "Reports",
        "no_model": "no model loaded (start with --model RUN_DIR)", "loading": "loading…",
        "select_study": "Pick a study on the left.", "no_webgl": "WebGL2 is not available: the volume view is off.",
        "class": "class", "point": "point", "show_seg": "segmentation overlay", "dialog_title": "2.5D slicing",
        "language": "language",
    },
    "zh": {
        "title": "petcad 阅片器", "studies": "检查", "patient": "患者", "lesions": "病灶",
        "lesion": "病灶", "label": "标签", "prediction": "预测", "segmentation": "分割",
        "seg_lesions": "分割出的病灶", "window": "CT 窗", "lung": "肺窗", "mediastinum": "纵隔窗",
        "bone": "骨窗", "pet_window": "PET 窗（SUV）", "opacity": "PET 不透明度", "mip": "PET 最大密度投影",
        "cursor": "光标", "analyse": "分析十字线处", "analysis": "病灶分析",
        "transform": "2.5D 切片…", "saliency": "显著性", "hide_saliency": "隐藏显著性",
        "probability": "概率", "without_tta": "不使用测试时增强", "with_tta": "测试时增强（729 种变换）",
        "features": "诊断特征", "shift": "平移（像素）", "rotate": "旋转（度）",
        "hint": "平移请保持在 -10..10 像素之内。", "submit": "提交", "cancel": "取消",
        "progress": "2.5D 切片进度", "share": "归因占比", "reports": "报告",
        "no_model": "未加载模型（使用 --model RUN_DIR 启动）", "loading": "加载中…",
        "select_study": "请在左侧选择一个检查。", "no_webgl": "WebGL2 不可用：体数据视图已关闭。",
        "class": "类别", "point": "点", "show_seg": "分割叠加", "dialog_title": "2.5D 切片",
        "language": "语言",
    },
}


def ui_strings(lang: str) -> dict:
    """Every word the page shows in ``lang``: interface words, labels, planes, modalities."""
    lang = i18n.check_lang(lang)
    return {"ui": dict(_UI[lang]), "labels": dict(i18n.LABELS[lang]), "planes": dict(i18n.PLANES[lang]),
            "modalities": dict(i18n.MODALITIES[lang])}


def all_text() -> str:
    """Every character of every language's strings (for the font subset)."""
    from petcad.explain.panels import WORDS

    parts = []
    for lang in i18n.LANGS:
        s = ui_strings(lang)
        for group in s.values():
            parts.extend(group.values())
        parts.extend(WORDS[lang].values())
    parts.append("，：（）、。…·–×0123456789.-+% / English 中文")
    return "".join(parts)
