// petcad viewer: study browser, fused PET/CT (NiiVue), 2.5D patch panels, probabilities, saliency.
// World coordinates shown are mm in the DICOM patient frame (LPS); NiiVue works in RAS (x, y negated).
"use strict";

const CT_PRESETS = { lung: [-1350, 150], mediastinum: [-135, 215], bone: [-500, 1300] }; // W1500/L-600, W350/L40, W1800/L400
const state = { lang: "en", strings: null, config: null, study: null, analysis: null, saliency: null,
  showSaliency: false, request: null, nv: null, glOk: false, ctWindow: CT_PRESETS.mediastinum };
const $ = (id) => document.getElementById(id);

async function getJSON(url, opts) {
  const r = await fetch(url, opts);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}
const postJSON = (url, body) => getJSON(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const t = (key) => (state.strings && state.strings.ui[key]) || key;
const labelName = (lab) => (lab && state.strings && state.strings.labels[lab]) || lab || "";
const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
function setStatus(text) { $("status").textContent = text; }

// ------------------------------------------------------------------ language
async function setLang(lang) {
  state.strings = await getJSON(`/api/strings/${lang}`);
  state.lang = lang;
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("lang-en").classList.toggle("active", lang === "en");
  $("lang-zh").classList.toggle("active", lang === "zh");
  $("btn-saliency").textContent = state.showSaliency ? t("hide_saliency") : t("saliency");
  $("model-note").textContent = state.config && !state.config.model ? t("no_model") : "";
  if (state.study) renderLesions();
  if (state.analysis) renderAnalysis();
}

// ------------------------------------------------------------------ studies
async function loadStudies() {
  const list = await getJSON("/api/studies");
  const ul = $("studies");
  ul.replaceChildren(...list.map((s) => {
    const li = document.createElement("li");
    li.dataset.sid = s.id;
    li.innerHTML = `<span></span><span class="tag"></span>`;
    li.children[0].textContent = s.patient_id;
    li.children[1].textContent = `${s.n_lesions}`;
    li.onclick = () => openStudy(s.id);
    return li;
  }));
}

async function openStudy(sid) {
  document.querySelectorAll("#studies li").forEach((li) => li.classList.toggle("sel", li.dataset.sid === sid));
  setStatus(t("loading"));
  state.study = await getJSON(`/api/studies/${sid}`);
  state.analysis = null; state.saliency = null;
  renderLesions();
  renderAnalysis();
  $("mip").src = `/api/studies/${sid}/mip.png?suv_max=${Number($("pet-max").value) || 5}`;
  await loadVolumes(sid);
  setStatus("");
}

function renderLesions() {
  const s = state.study;
  $("lesions").replaceChildren(...s.lesions.map((l) => {
    const li = document.createElement("li");
    li.dataset.index = l.index;
    const cls = l.prediction ? ("malignant" in l.prediction ? "malignant" : Object.keys(l.prediction).at(-1)) : null;
    const p = cls ? ` · ${fmt(l.prediction[cls], 2)}` : "";
    li.innerHTML = `<span></span><span class="tag"></span>`;
    li.children[0].textContent = l.lesion_id;
    li.children[1].textContent = labelName(l.label) + p;
    if (/^[\w-]+$/.test(l.label)) li.children[1].classList.add(l.label);
    if (cls) li.title = `P(${labelName(cls)}) = ${fmt(l.prediction[cls], 4)}`;
    li.onclick = () => pickLesion(l.index);
    if (state.request && state.request.lesion === l.index) li.classList.add("sel");
    return li;
  }));
  const seg = s.seg_lesions || [];
  $("seg-title").hidden = seg.length === 0;
  $("seg-toggle").hidden = !s.has_labels;
  $("seg-lesions").replaceChildren(...seg.map((l, i) => {
    const li = document.createElement("li");
    li.innerHTML = `<span></span><span class="tag"></span>`;
    li.children[0].textContent = `${t("lesion")} ${l.lesion ?? i + 1}`;
    li.children[1].textContent = `${labelName(l.predicted)} ${l.volume_ml != null ? fmt(l.volume_ml, 1) + " ml" : ""}`;
    li.onclick = () => { goTo([l.x, l.y, l.z]); analyse({ point: [l.x, l.y, l.z] }); };
    li.dataset.seg = i;
    return li;
  }));
}

// ------------------------------------------------------------------ NiiVue
function initNiivue() {
  const gl = document.createElement("canvas").getContext("webgl2");
  if (!gl || !window.niivue) { $("no-webgl").hidden = false; $("gl").hidden = true; return; }
  const nv = new niivue.Niivue({ backColor: [0, 0, 0, 1], crosshairColor: [0.1, 0.9, 0.3, 1], isColorbar: true,
    show3Dcrosshair: true, dragAndDropEnabled: false, multiplanarShowRender: 0, isRadiologicalConvention: true,
    onLocationChange: onLocation });
  nv.attachToCanvas($("gl"));
  nv.setSliceType(nv.sliceTypeMultiplanar);
  nv.setMultiplanarLayout(3); // one row: axial, coronal, sagittal
  state.nv = nv; state.glOk = true;
}

async function loadVolumes(sid) {
  if (!state.glOk) return;
  const nv = state.nv;
  const vols = [
    { url: `/api/studies/${sid}/ct.nii`, name: "ct.nii", colormap: "gray", cal_min: state.ctWindow[0], cal_max: state.ctWindow[1] },
    { url: `/api/studies/${sid}/pet.nii`, name: "pet.nii", colormap: "hot", cal_min: Number($("pet-min").value), cal_max: Number($("pet-max").value), opacity: Number($("opacity").value) },
  ];
  // segmentation labels are class indices 1..K: one colour per class
  if (state.study.has_labels) vols.push({ url: `/api/studies/${sid}/labels.nii`, name: "labels.nii", colormap: "winter", cal_min: 0.5, cal_max: Math.max(1.5, state.study.n_label_classes + 0.5), opacity: 0.6 });
  await nv.loadVolumes(vols);
  nv.volumes[0].colorbarVisible = false;
  if (nv.volumes[2]) nv.volumes[2].colorbarVisible = false;
  nv.updateGLVolume();
}

function lpsAtCrosshair() {
  const nv = state.nv;
  const ras = nv.frac2mm(nv.scene.crosshairPos);
  return [-ras[0], -ras[1], ras[2]];
}

function onLocation(data) { showReadout(data.mm); }

// HU, SUV and the LPS position of a world point given in NiiVue's RAS mm
function showReadout(ras) {
  const nv = state.nv;
  if (!nv || nv.volumes.length < 2) return;
  const val = (v) => { const x = v.mm2vox(ras); return v.getValue(x[0], x[1], x[2]); };
  $("readout").textContent = `x ${fmt(-ras[0], 1)}  y ${fmt(-ras[1], 1)}  z ${fmt(ras[2], 1)} mm (LPS)   ` +
    `HU ${fmt(val(nv.volumes[0]), 0)}   SUV ${fmt(val(nv.volumes[1]), 2)}`;
}

function goTo(lps) {
  if (!state.glOk || state.nv.volumes.length === 0) return;
  const nv = state.nv;
  nv.scene.crosshairPos = nv.mm2frac([-lps[0], -lps[1], lps[2]]);
  nv.drawScene();
  nv.createOnLocationChange();
}

function setCtWindow(name) {
  state.ctWindow = CT_PRESETS[name];
  document.querySelectorAll(".preset").forEach((b) => b.classList.toggle("active", b.dataset.preset === name));
  if (!state.glOk || !state.nv.volumes[0]) return;
  state.nv.volumes[0].cal_min = state.ctWindow[0];
  state.nv.volumes[0].cal_max = state.ctWindow[1];
  state.nv.updateGLVolume();
}

function setPetWindow() {
  const lo = Number($("pet-min").value), hi = Number($("pet-max").value);
  if (!(hi > lo)) return;
  if (state.study) $("mip").src = `/api/studies/${state.study.id}/mip.png?suv_max=${hi}`;
  if (!state.glOk || !state.nv.volumes[1]) return;
  state.nv.volumes[1].cal_min = lo; state.nv.volumes[1].cal_max = hi;
  state.nv.updateGLVolume();
}

// Median time of one view update (move the crosshair one voxel, redraw, wait for the GPU), in ms.
function measureViewUpdate(n = 30) {
  const nv = state.nv;
  if (!state.glOk || !nv.volumes.length) return null;
  const gl = nv.gl, px = new Uint8Array(4), times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    nv.moveCrosshairInVox(0, 0, i % 2 ? -1 : 1);
    nv.drawScene();
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); // forces the frame to finish
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median_ms: times[Math.floor(n / 2)], max_ms: times[n - 1], n };
}

// ------------------------------------------------------------------ analysis
function pickLesion(index) {
  const l = state.study.lesions[index];
  goTo([l.x, l.y, l.z]);
  analyse({ lesion: index });
}

function transformValues() {
  const v = (id) => Number($(id).value) || 0;
  return { shift: [v("shift-x"), v("shift-y"), v("shift-z")], rotate: [v("rot-x"), v("rot-y"), v("rot-z")] };
}

async function analyse(target, transform = { shift: [0, 0, 0], rotate: [0, 0, 0] }) {
  if (!state.study) return;
  const req = { ...target, ...transform, tta: true };
  setStatus(t("loading"));
  try {
    const res = await postJSON(`/api/studies/${state.study.id}/analyze`, req);
    state.request = req; state.analysis = res; state.saliency = null;
    if (state.showSaliency) await loadSaliency();
    renderLesions();
    renderAnalysis();
    setStatus(`${res.ms} ms`);
  } catch (e) { setStatus(e.message); throw e; }
}

async function loadSaliency() {
  state.saliency = await postJSON(`/api/studies/${state.study.id}/saliency`, { ...state.request, method: "ig" });
}

function decode(b64) {
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function drawPanel(canvas, data, offset, n, [lo, hi, cmap]) {
  canvas.width = n; canvas.height = n;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(n, n);
  for (let p = 0; p < n * n; p++) {
    let g = Math.max(0, Math.min(1, (data[offset + p] - lo) / (hi - lo || 1)));
    if (cmap === "gray_r") g = 1 - g;
    const c = Math.round(255 * g);
    img.data.set([c, c, c, 255], 4 * p);
  }
  ctx.putImageData(img, 0, 0);
}

function drawSaliency(canvas, attr, offset, n, scale) {
  canvas.width = n; canvas.height = n;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(n, n);
  for (let p = 0; p < n * n; p++) {
    const a = attr[offset + p] / (scale || 1);
    img.data.set([a > 0 ? 255 : 0, 0, a < 0 ? 255 : 0, Math.round(255 * Math.min(0.85, Math.abs(a) * 1.5))], 4 * p);
  }
  ctx.putImageData(img, 0, 0);
}

function renderAnalysis() {
  const a = state.analysis;
  $("btn-transform").disabled = !a;
  $("btn-saliency").disabled = !a || !state.config.model;
  if (!a) { $("panels").replaceChildren(); $("probs").replaceChildren(); $("features").replaceChildren(); $("share").textContent = ""; return; }
  const n = a.size, data = decode(a.patches);
  const sal = state.showSaliency && state.saliency ? decode(state.saliency.attributions) : null;
  const scale = sal ? sal.reduce((m, v) => Math.max(m, Math.abs(v)), 0) : 0;
  $("panels").replaceChildren(...a.channels.map((ch, c) => {
    const fig = document.createElement("figure");
    fig.className = "panel-box";
    fig.innerHTML = `<figcaption></figcaption><canvas class="panel"></canvas>`;
    fig.children[0].textContent = a.titles[state.lang][c];
    const cv = fig.children[1];
    cv.dataset.channel = ch;
    drawPanel(cv, data, c * n * n, n, a.display[c]);
    if (sal) {
      const ov = document.createElement("canvas");
      ov.className = "overlay";
      drawSaliency(ov, sal, c * n * n, n, scale);
      fig.appendChild(ov);
    }
    return fig;
  }));
  $("share").textContent = sal ? `${t("share")}: ` + Object.entries(state.saliency.share).map(([k, v]) => `${k} ${(100 * v).toFixed(0)} %`).join(", ") : "";
  const row = (cells, tag, cls) => { // text only: labels come from files and are never parsed as HTML
    const tr = document.createElement("tr");
    cells.forEach((text, i) => {
      const td = document.createElement(tag);
      td.textContent = text;
      if (cls && cls[i]) td.className = cls[i];
      tr.appendChild(td);
    });
    return tr;
  };
  const rows = [row([t("class"), t("without_tta"), t("with_tta")], "th")];
  if (a.probability) {
    for (const c of a.classes) {
      const tr = row([labelName(c), fmt(a.probability[c], 4), a.probability_tta ? fmt(a.probability_tta[c], 4) : "–"],
        "td", [null, "p", "p-tta"]);
      tr.dataset.class = c;
      rows.push(tr);
    }
  }
  $("probs").replaceChildren(...rows);
  $("features").replaceChildren(...Object.entries(a.features || {}).map(([k, v]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td>";
    tr.children[0].textContent = k; tr.children[1].textContent = fmt(v, 2);
    return tr;
  }));
}

// ------------------------------------------------------------------ dialog
function openDialog() {
  const tr = state.analysis.transform;
  ["x", "y", "z"].forEach((ax, i) => { $(`shift-${ax}`).value = tr.shift[i]; $(`rot-${ax}`).value = tr.rotate[i]; });
  $("progress").value = 0;
  $("transform-dialog").showModal();
}

async function submitDialog() {
  const target = state.request.lesion !== undefined && state.request.lesion !== null ? { lesion: state.request.lesion } : { point: state.request.point };
  const bar = $("progress");
  bar.removeAttribute("value"); // indeterminate while the server slices and predicts
  try {
    await analyse(target, transformValues());
    bar.value = 1;
    $("transform-dialog").close();
  } catch (e) { bar.value = 0; }
}

async function toggleSaliency() {
  state.showSaliency = !state.showSaliency;
  $("btn-saliency").textContent = state.showSaliency ? t("hide_saliency") : t("saliency");
  if (state.showSaliency && !state.saliency) {
    setStatus(t("loading"));
    await loadSaliency();
    setStatus(`${state.saliency.ms} ms`);
  }
  renderAnalysis();
}

// ------------------------------------------------------------------ start
async function main() {
  state.config = await getJSON("/api/config");
  $("reports").replaceChildren(...state.config.reports.map((rid, i) => {
    const a = document.createElement("a");
    a.href = `/reports/${rid}/report.html`; a.target = "_blank"; a.rel = "noopener";
    a.dataset.t = "reports"; a.textContent = "Reports";
    if (i) a.removeAttribute("data-t"), (a.textContent = `#${i + 1}`);
    return a;
  }));
  initNiivue();
  document.fonts.load("14px petcad-cjk", "中文").catch(() => null); // the CJK subset, before it is needed
  await setLang(state.config.lang);
  setCtWindow("mediastinum");
  document.querySelectorAll(".preset").forEach((b) => { b.onclick = () => setCtWindow(b.dataset.preset); });
  $("pet-min").onchange = $("pet-max").onchange = setPetWindow;
  $("opacity").oninput = () => { if (state.glOk && state.nv.volumes[1]) state.nv.setOpacity(1, Number($("opacity").value)); };
  $("show-seg").onchange = () => { if (state.glOk && state.nv.volumes[2]) state.nv.setOpacity(2, $("show-seg").checked ? 0.6 : 0); };
  $("lang-en").onclick = () => setLang("en");
  $("lang-zh").onclick = () => setLang("zh");
  $("btn-analyse").onclick = () => { if (state.glOk && state.nv.volumes.length) analyse({ point: lpsAtCrosshair() }); };
  $("gl").addEventListener("mousemove", (ev) => { // read-out under the cursor, not only at the crosshair
    const nv = state.nv;
    if (!state.glOk || nv.volumes.length < 2) return;
    const r = ev.target.getBoundingClientRect(), dpr = (nv.uiData && nv.uiData.dpr) || window.devicePixelRatio || 1;
    const frac = nv.canvasPos2frac([(ev.clientX - r.left) * dpr, (ev.clientY - r.top) * dpr]);
    if (frac && frac[0] >= 0) showReadout(nv.frac2mm(frac));
  });
  $("gl").addEventListener("dblclick", () => $("btn-analyse").click()); // double click: analyse that point
  $("btn-transform").onclick = openDialog;
  $("btn-submit").onclick = submitDialog;
  $("btn-cancel").onclick = () => $("transform-dialog").close();
  $("btn-saliency").onclick = toggleSaliency;
  $("mip").onclick = async (ev) => {
    const r = ev.target.getBoundingClientRect();
    const res = await getJSON(`/api/studies/${state.study.id}/mip_point?u=${(ev.clientX - r.left) / r.width}&v=${(ev.clientY - r.top) / r.height}`);
    goTo(res.point);
  };
  await loadStudies();
  if (!state.study) setStatus(t("select_study"));
  document.body.dataset.ready = "1";
}

window.petcad = { state, measureViewUpdate, openStudy, pickLesion, analyse, setLang };
main().catch((e) => setStatus(String(e)));
