// The page of `automod serve`: photos in, views out. Every request carries the token of the printed address.
"use strict";

const TOKEN = decodeURIComponent(document.querySelector('meta[name="automod-token"]').content);
const $ = (id) => document.getElementById(id);
const state = { model: null, photos: [], directions: [], requests: {}, controllers: {}, urls: {} };
const PAGE = Math.random().toString(36).slice(2, 12);  // this page's requests are numbered apart from other tabs

async function api(path, options = {}) {
  const headers = Object.assign({ "X-Automod-Token": TOKEN }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function imageUrl(path) { return `${path}?token=${encodeURIComponent(TOKEN)}`; }

// ---- the model and its limits ----------------------------------------------------------------------------------
async function loadInfo() {
  const info = await (await api("api/info")).json();
  state.model = info.model;
  const m = info.model;
  $("model-line").textContent = `model: ${m.checkpoint} (${m.kind}, ${m.resolution}², ${m.latent_dim}-d latents, ` +
    `${m.blocks} decoder blocks)`;
  $("trained-on").textContent = `trained on: ${m.trained_on}` + (m.aligns_faces ? "; faces are aligned first" : "") +
    (m.note ? ` (${m.note})` : "");
  setWarning(info.warning);
  for (const d of info.directions) addDirectionOption(d);
  state.photos = info.photos;
  renderPhotos();
  setupScales();
  greyOut();
  if (state.photos.length) refreshAll();  // a reloaded page shows the photos the server holds at once
}

function setWarning(text) {
  $("warning").hidden = !text;
  $("warning").textContent = text ? `warning: ${text}` : "";
}

function greyOut() {
  const cannot = state.model.cannot || {};
  const disable = (tab, reason) => {
    const button = document.querySelector(`#tabs button[data-tab="${tab}"]`);
    button.classList.add("disabled");
    button.title = reason;
    const view = $(`view-${tab}`);
    view.querySelectorAll("input, select, button").forEach((el) => { el.disabled = true; });
    $(`${tab === "interpolate" ? "interpolate" : tab}-error`).textContent = reason;
    view.classList.add("disabled");
  };
  if (cannot.mix) { disable("mix", cannot.mix); disable("grid", cannot.mix); }
  if (cannot.scales) {
    document.querySelectorAll(".scale-select").forEach((el) => { el.disabled = true; el.title = cannot.scales; });
  }
  if (cannot.encode) {
    ["mix", "grid", "edit", "interpolate", "reconstruct"].forEach((tab) => disable(tab, cannot.encode));
    $("file-input").disabled = true;
    $("upload-status").textContent = cannot.encode;
  }
}

function blockLabel(from, to) {
  const res = state.model.block_resolutions;
  const last = to - 1;
  return from === last ? `block ${from} (${res[from]}²)` : `blocks ${from}–${last} (${res[from]}²–${res[last]}²)`;
}

// the named scales this model has: coarse = 4²–8², mid = 16²–32², fine = 64² and up (as the CLI names them)
function namedScales() {
  const res = state.model.block_resolutions;
  const has = (low, high) => res.some((r) => r >= low && r <= high);
  return ["coarse", "mid", "fine"].filter((name, i) => has([4, 16, 64][i], [8, 32, Infinity][i]));
}

function setupScales() {
  const blocks = state.model.blocks;
  const named = namedScales();
  document.querySelectorAll('input[name="mix-scale"]').forEach((el) => {
    if (el.value !== "blocks" && !named.includes(el.value)) {
      el.disabled = true;
      el.parentElement.title = `a ${state.model.resolution}² model has no ${el.value} scales`;
    }
  });
  for (const select of document.querySelectorAll(".scale-select")) {
    for (const name of named) select.add(new Option(name, name));
    for (let i = 0; i < blocks; i++) {
      for (let j = i + 1; j <= blocks; j++) select.add(new Option(blockLabel(i, j), `${i}:${j}`));
    }
  }
  $("mix-from").max = blocks - 1;
  $("mix-to").max = blocks;
  $("mix-to").min = 1;
  $("mix-to").value = Math.min(2, blocks);
  updateRangeLabel();
}

// ---- photos ----------------------------------------------------------------------------------------------------
async function addFiles(files) {
  const list = Array.from(files);
  let done = 0;
  for (const file of list) {
    $("upload-status").textContent = `encoding ${file.name} (${done + 1} of ${list.length})…`;
    try {
      const response = await api(`api/photos?name=${encodeURIComponent(file.name)}`, {
        method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
      });
      const result = await response.json();
      state.photos.push(result.photo);
      setWarning(result.warning);
      renderPhotos();
    } catch (error) {
      $("upload-status").textContent = `${file.name}: ${error.message}`;
      $("upload-status").classList.add("error");
      continue;
    }
    done += 1;
  }
  if (done === list.length) {
    $("upload-status").classList.remove("error");
    $("upload-status").textContent = `${state.photos.length} photo${state.photos.length === 1 ? "" : "s"} ready.`;
  }
  refreshAll();
}

function errorText(errors) {
  const parts = [`MSE ${errors.mse.toFixed(4)}`];
  if (errors.ssim !== null && errors.ssim !== undefined) parts.push(`SSIM ${errors.ssim.toFixed(3)}`);
  return parts.join(" · ");
}

function renderPhotos() {
  const list = $("photo-list");
  list.replaceChildren();
  for (const photo of state.photos) {
    const card = document.createElement("figure");
    card.className = "photo";
    card.dataset.id = photo.id;
    const input = new Image();
    input.src = imageUrl(`api/photos/${photo.id}/input.png`) + `&face=${photo.face}`;
    input.alt = photo.name;
    input.className = "pixels";
    const recon = new Image();
    recon.src = imageUrl(`api/photos/${photo.id}/reconstruction.png`) + `&face=${photo.face}`;
    recon.alt = `reconstruction of ${photo.name}`;
    recon.className = "pixels";
    const caption = document.createElement("figcaption");
    caption.textContent = `${photo.name} — ${errorText(photo.errors)}` +
      (photo.unaligned ? " (no face found: used as it is)" : "") + (photo.unlike ? " (unlike the training data)" : "");
    const remove = document.createElement("button");
    remove.textContent = "remove";
    remove.className = "remove";
    remove.onclick = async () => {
      const result = await (await api(`api/photos/${photo.id}`, { method: "DELETE" })).json();
      state.photos = state.photos.filter((p) => p.id !== photo.id);
      setWarning(result.warning);
      renderPhotos();
      refreshAll();
    };
    card.append(input, recon, caption);
    if (photo.faces > 1) card.append(facePicker(photo));
    card.append(remove);
    list.append(card);
  }
  fillPhotoSelects();
}

// Several faces of about the same size: the person picks the one they mean (as --face NAME=N does in the CLI).
function facePicker(photo) {
  const box = document.createElement("div");
  box.className = "faces";
  const largest = photo.face === 0 ? "the largest" : `face ${photo.face}`;
  box.append(`${photo.faces} faces found; aligned ${largest}.`);
  if (photo.similar < 2) return box;
  box.append(" Face: ");
  for (let i = 0; i < Math.min(photo.faces, 8); i++) {
    const button = document.createElement("button");
    button.textContent = String(i);
    button.className = i === photo.face ? "face chosen" : "face";
    button.onclick = () => chooseFace(photo, i);
    box.append(button);
  }
  return box;
}

async function chooseFace(photo, face) {
  try {
    const result = await (await api(`api/photos/${photo.id}/face`, {
      method: "POST", body: JSON.stringify({ face }), headers: { "Content-Type": "application/json" },
    })).json();
    state.photos = state.photos.map((p) => (p.id === photo.id ? result.photo : p));
    setWarning(result.warning);
    renderPhotos();
    refreshAll();
  } catch (error) {
    $("upload-status").textContent = `${photo.name}: ${error.message}`;
  }
}

function fillPhotoSelects() {
  const defaults = { "mix-b": 1, "interpolate-b": 1 };
  for (const select of document.querySelectorAll(".photo-select")) {
    const chosen = new Set(Array.from(select.selectedOptions).map((o) => o.value));
    select.replaceChildren();
    state.photos.forEach((photo, i) => {
      const option = new Option(photo.name, photo.id);
      option.selected = chosen.has(photo.id);
      select.add(option);
    });
    if (!select.multiple && (!chosen.size || !select.dataset.user) && state.photos.length) {  // until the user picks
      select.selectedIndex = Math.min(defaults[select.id] || 0, state.photos.length - 1);
    }
  }
  const fix = $("sample-fix");
  const kept = fix.value;
  fix.replaceChildren(new Option("nothing (random)", ""));
  for (const photo of state.photos) fix.add(new Option(photo.name, photo.id));
  fix.value = state.photos.some((p) => p.id === kept) ? kept : "";
}

// ---- views -----------------------------------------------------------------------------------------------------
// Each view request has a number; a newer one aborts the one in flight, and the server drops overtaken ones.
async function show(view, body, target = view) {
  const section = document.querySelector(`.view[data-view="${target === "frame" ? "interpolate" : target}"]`);
  if (section.classList.contains("disabled")) return;
  const number = (state.requests[view] || 0) + 1;
  state.requests[view] = number;
  if (state.controllers[view]) state.controllers[view].abort();
  const controller = new AbortController();
  state.controllers[view] = controller;
  section.dataset.state = "busy";
  try {
    const response = await api(`api/view/${view}`, {
      method: "POST", body: JSON.stringify(Object.assign({ request: number, page: PAGE }, body)),
      headers: { "Content-Type": "application/json" }, signal: controller.signal,
    });
    const blob = await response.blob();
    if (number !== state.requests[view]) return;
    if (state.urls[view]) URL.revokeObjectURL(state.urls[view]);
    const url = URL.createObjectURL(blob);
    state.urls[view] = url;
    $(`${view}-result`).src = url;
    if (view !== "frame") {
      const link = $(`${view}-download`);
      link.href = url;
      link.download = response.headers.get("X-Automod-Filename") || `${view}.png`;
      $(`${view}-command`).textContent = decodeURIComponent(response.headers.get("X-Automod-Command") || "");
    }
    $(`${view}-error`).textContent = "";
    section.dataset.state = "ready";
  } catch (error) {
    if (error.name === "AbortError" || error.status === 409) return;
    if (number !== state.requests[view]) return;
    $(`${view}-error`).textContent = error.message;
    section.dataset.state = "error";
  }
}

function needPhotos(view, count) {
  if (state.photos.length >= count) return true;
  $(`${view}-error`).textContent = count === 1 ? "add a photo first." : `add ${count} photos first (one may repeat).`;
  return false;
}

function mixScales() {
  const chosen = document.querySelector('input[name="mix-scale"]:checked').value;
  return chosen === "blocks" ? `${$("mix-from").value}:${$("mix-to").value}` : chosen;
}

function updateRangeLabel() {
  const from = Number($("mix-from").value);
  const to = Number($("mix-to").value);
  $("mix-range-label").textContent = blockLabel(from, to);
}

function onRange(event) {
  // the two handles never cross: the range keeps at least one block
  let from = Number($("mix-from").value);
  let to = Number($("mix-to").value);
  if (from >= to) {
    if (event.target.id === "mix-from") { to = from + 1; $("mix-to").value = to; }
    else { from = to - 1; $("mix-from").value = from; }
  }
  document.querySelector('input[name="mix-scale"][value="blocks"]').checked = true;
  updateRangeLabel();
  refreshMix();
}

function refreshMix() {
  if (!needPhotos("mix", 1)) return;
  $("mix-a-photo").src = imageUrl(`api/photos/${$("mix-a").value}/input.png`);
  $("mix-b-photo").src = imageUrl(`api/photos/${$("mix-b").value}/input.png`);
  show("mix", { a: $("mix-a").value, b: $("mix-b").value, scales: mixScales() });
}

function selected(id) { return Array.from($(id).selectedOptions).map((o) => o.value); }

function refreshGrid() {
  if (!needPhotos("grid", 1)) return;
  const rows = selected("grid-rows");
  const cols = selected("grid-cols");
  const all = state.photos.map((p) => p.id);
  show("grid", { rows: rows.length ? rows : all, cols: cols.length ? cols : all, scales: $("grid-scales").value });
}

function refreshEdit() {
  if (!needPhotos("edit", 1)) return;
  const source = $("edit-direction").value;
  const direction = source === "photos" ? { pos: selected("edit-pos"), neg: selected("edit-neg") } : source;
  $("edit-strength-label").textContent = $("edit-strength").value;
  show("edit", { photo: $("edit-photo").value, direction, strength: Number($("edit-strength").value),
    scales: $("edit-scales").value || null });
}

function interpolationBody() {
  return { a: $("interpolate-a").value, b: $("interpolate-b").value, steps: Number($("interpolate-steps").value),
    scales: $("interpolate-scales").value || null };
}

function refreshInterpolation() {
  if (!needPhotos("interpolate", 1)) return;
  const steps = Number($("interpolate-steps").value);
  $("interpolate-position").max = steps - 1;
  if (Number($("interpolate-position").value) > steps - 1) $("interpolate-position").value = steps - 1;
  show("interpolate", interpolationBody());
  refreshFrame();
}

function refreshFrame() {
  if (state.photos.length < 1) return;
  show("frame", Object.assign(interpolationBody(), { frame: Number($("interpolate-position").value) }));
}

function refreshSample() {
  const fix = $("sample-fix").value;
  $("sample-scales").disabled = !fix || Boolean((state.model.cannot || {}).scales);
  show("sample", { n: Number($("sample-n").value), seed: Number($("sample-seed").value), fix: fix || null,
    scales: fix ? $("sample-scales").value : null });
}

function refreshReconstruct() {
  if (!needPhotos("reconstruct", 1)) return;
  show("reconstruct", { photo: $("reconstruct-photo").value });
}

const REFRESH = { mix: refreshMix, grid: refreshGrid, edit: refreshEdit, interpolate: refreshInterpolation,
  sample: refreshSample, reconstruct: refreshReconstruct };

function activeTab() { return document.querySelector("#tabs button.active").dataset.tab; }

function refreshAll() { REFRESH[activeTab()](); }

function addDirectionOption(direction) {
  $("edit-direction").add(new Option(`file ${direction.name}`, direction.id));
}

async function addDirection(file) {
  try {
    const response = await api(`api/directions?name=${encodeURIComponent(file.name)}`, {
      method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
    });
    const direction = await response.json();
    addDirectionOption(direction);
    $("edit-direction").value = direction.id;
    refreshEdit();
  } catch (error) {
    $("edit-error").textContent = `${file.name}: ${error.message}`;
  }
}

// ---- wiring ----------------------------------------------------------------------------------------------------
function wire() {
  $("file-input").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => {
      document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b === button));
      document.querySelectorAll(".view").forEach((v) => { v.hidden = v.dataset.view !== button.dataset.tab; });
      refreshAll();
    });
  }
  document.querySelectorAll(".photo-select").forEach((el) => el.addEventListener("change", () => { el.dataset.user = "1"; }));
  ["mix-a", "mix-b"].forEach((id) => $(id).addEventListener("change", refreshMix));
  document.querySelectorAll('input[name="mix-scale"]').forEach((el) => el.addEventListener("change", refreshMix));
  ["mix-from", "mix-to"].forEach((id) => $(id).addEventListener("input", onRange));
  ["grid-rows", "grid-cols", "grid-scales"].forEach((id) => $(id).addEventListener("change", refreshGrid));
  ["edit-photo", "edit-direction", "edit-pos", "edit-neg", "edit-scales"].forEach(
    (id) => $(id).addEventListener("change", refreshEdit));
  $("edit-strength").addEventListener("input", refreshEdit);
  $("direction-input").addEventListener("change", (e) => { if (e.target.files[0]) addDirection(e.target.files[0]); e.target.value = ""; });
  ["interpolate-a", "interpolate-b", "interpolate-steps", "interpolate-scales"].forEach(
    (id) => $(id).addEventListener("change", refreshInterpolation));
  $("interpolate-position").addEventListener("input", refreshFrame);
  ["sample-n", "sample-seed", "sample-fix", "sample-scales"].forEach((id) => $(id).addEventListener("change", refreshSample));
  $("sample-new").addEventListener("click", () => { $("sample-seed").value = Number($("sample-seed").value) + 1; refreshSample(); });
  $("reconstruct-photo").addEventListener("change", refreshReconstruct);
}

wire();
loadInfo().catch((error) => { $("model-line").textContent = `cannot reach the server: ${error.message}`; });
