// Restora's web page: upload a file, follow the job, compare before and after, download.
// Plain browser JavaScript against the public API (/docs); no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const RETRY_MS = 1000;
let currentJob = null;

function authHeaders() {
  const key = $("api-key").value.trim();
  localStorage.setItem("restora-api-key", key);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ detail: response.statusText }));
    throw new Error(`${response.status}: ${body.detail}`);
  }
  return response;
}

// Files are fetched with the API key and shown from memory, so the page works with auth on.
async function objectUrl(path) {
  return URL.createObjectURL(await (await api(path)).blob());
}

function submit(file) {
  const form = new FormData();
  form.append("file", file);
  form.append("noise_level", $("noise-level").value);
  form.append("layout", $("layout").value);
  form.append("kind", $("kind").value);
  const chosen = $("model").selectedOptions[0];
  // A user's model does its own task at its own scale; otherwise the Task choice says.
  const [task, scale] = chosen.value ? [chosen.dataset.task, chosen.dataset.scale] : $("task").value.split(" ");
  form.append("task", task);
  if (scale) form.append("scale", scale);
  if (chosen.value) form.append("model", chosen.value);
  showJob({ id: "", status: "uploading", stage: "0%", progress: 0, input: { filename: file.name } });
  $("result").hidden = true;
  // XMLHttpRequest, not fetch: it reports upload progress.
  const request = new XMLHttpRequest();
  request.open("POST", "/v1/jobs");
  for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
  request.upload.onprogress = (e) => e.lengthComputable && showUpload(e.loaded / e.total);
  request.onload = () => {
    const body = JSON.parse(request.responseText || "{}");
    if (request.status !== 202) return showError(`${request.status}: ${body.detail || "upload refused"}`);
    follow(body.id);
  };
  request.onerror = () => showError("the upload failed: is the server reachable?");
  request.send(form);
}

function showUpload(fraction) {
  $("job-stage").textContent = `uploading ${Math.round(fraction * 100)}%`;
  $("job-progress").value = fraction;
}

// Live updates: the job's Server-Sent Events, read with fetch (EventSource cannot send the API key).
// A dropped stream is reopened; it starts again from the job's current state.
async function follow(jobId) {
  try {
    const response = await api(`/v1/jobs/${jobId}/events`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = (buffer + value).replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n");
        if (!block.split("\n").includes("event: job") || !data) continue;
        const job = JSON.parse(data);
        showJob(job);
        if (job.status === "succeeded") return await showResult(job);
        if (job.status !== "queued" && job.status !== "running") return;
      }
    }
    setTimeout(() => follow(jobId), RETRY_MS);
  } catch (error) {
    showError(error.message);
  }
}

function showJob(job) {
  currentJob = job;
  $("job").hidden = false;
  $("job-error").hidden = true;
  $("job-id").textContent = job.id;
  $("job-status").textContent = job.status;
  $("job-status").className = `status ${job.status}`;
  const eta = job.status === "running" && job.eta_s != null ? `, about ${Math.ceil(job.eta_s)} s left` : "";
  $("job-stage").textContent = (job.status === "queued" && job.queue_position ? `${job.stage}: number ${job.queue_position} in line` : job.stage) + eta;
  $("job-progress").value = job.progress;
  const input = job.input || {};
  $("job-input").textContent = [input.filename, input.shape && `shape ${input.shape.join("x")}`, input.dtype,
    input.channels && `${input.channels} channel${input.channels > 1 ? "s" : ""}`, input.layout].filter(Boolean).join(", ");
  $("job-noise").textContent = job.noise ? `${job.noise.level} (sigma ${job.noise.sigma}, from the ${job.noise.source})` : "–";
  $("job-model").textContent = job.model ? `${job.model.name} v${job.model.version}` : "–";
  $("cancel").hidden = !(job.status === "queued" || job.status === "running");
  if (job.error) showError(job.error);
}

function showError(message) {
  $("job").hidden = false;
  $("job-error").textContent = message;
  $("job-error").hidden = false;
}

async function showResult(job) {
  const isVideo = job.kind === "video";
  $("compare-image").hidden = isVideo;
  $("compare-video").hidden = !isVideo;
  if (isVideo) {
    $("before-video").src = await objectUrl(`/v1/jobs/${job.id}/input`);
    $("after-video").src = await objectUrl(`/v1/jobs/${job.id}/result?format=mp4`);
  } else {
    $("before").src = await objectUrl(`/v1/jobs/${job.id}/input?format=png`);
    $("after").src = await objectUrl(`/v1/jobs/${job.id}/result?format=png`);
  }
  const links = job.formats.map((fmt) => {
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = fmt;
    link.dataset.format = fmt;
    link.onclick = (e) => { e.preventDefault(); download(job.id, fmt); };
    return link;
  });
  $("downloads").replaceChildren("Download: ", ...links);
  const notes = Object.entries(job.result_notes || {}).map(([fmt, note]) => `${fmt}: ${note}`);
  $("result-notes").textContent = notes.join("\n");  // e.g. the mp4 is the input's own stream, and why
  $("result-notes").hidden = notes.length === 0;
  $("result").hidden = false;
}

async function download(jobId, fmt) {
  const link = document.createElement("a");
  link.href = await objectUrl(`/v1/jobs/${jobId}/result?format=${fmt}`);
  link.download = `restora-${jobId}.${fmt}`;
  link.click();
}

function setSlider(percent) {
  $("after-clip").style.clipPath = `inset(0 0 0 ${percent}%)`;
}

$("file").addEventListener("change", (e) => e.target.files[0] && submit(e.target.files[0]));
$("slider").addEventListener("input", (e) => setSlider(e.target.value));
$("cancel").addEventListener("click", async () => {
  if (!currentJob || !currentJob.id) return;
  try {
    showJob(await (await api(`/v1/jobs/${currentJob.id}`, { method: "DELETE" })).json());
  } catch (error) {
    showError(error.message);
  }
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) submit(e.dataTransfer.files[0]);
});
// The tasks Restora's own models do and users' own models, from /v1/models (which needs the API
// key when the server has keys); until it answers, the page offers the tasks written in its HTML.
async function loadModels() {
  const select = $("model");
  try {
    const { models } = await (await api("/v1/models")).json();
    const tasks = $("task");
    const chosen = tasks.value;
    tasks.length = 1;
    for (const m of models.filter((entry) => entry.source === "builtin" && entry.role === "restorer" && entry.task !== "denoise")) {
      const value = m.scale ? `${m.task} ${m.scale}` : m.task;
      if (![...tasks.options].some((o) => o.value === value)) {
        tasks.add(new Option(`denoise, then ${m.task}${m.scale ? ` x${m.scale}` : ""} (${m.kinds.join(", ")})`, value));
      }
    }
    tasks.value = [...tasks.options].some((o) => o.value === chosen) ? chosen : "denoise";
    select.length = 1;
    for (const m of models.filter((entry) => entry.source === "user")) {
      const option = new Option(`${m.name} (${m.architecture}, ${m.task === "upscale" ? `upscale x${m.scale}` : m.task})`, m.name);
      option.dataset.task = m.task;
      if (m.scale) option.dataset.scale = m.scale;
      select.add(option);
    }
  } catch {
    // no key yet, or no worker: Restora's own models still work
  }
}

$("api-key").value = localStorage.getItem("restora-api-key") || "";
$("api-key").addEventListener("change", loadModels);
setSlider($("slider").value);
loadModels();
