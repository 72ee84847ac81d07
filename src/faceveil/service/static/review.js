// Review page: one card per track (keep visible), a frame player over the original with the hidden
// regions outlined (draw a box on a missed face, delete one), then approve and render.
"use strict";

(() => {
  const root = document.getElementById("review");
  const jobId = root.dataset.job;
  const api = `/api/v1/jobs/${jobId}`;
  const canvas = document.getElementById("frame");
  const ctx = canvas.getContext("2d");
  const label = document.getElementById("frame-label");
  const deleteButton = document.getElementById("delete-box");
  const edits = document.getElementById("edits");
  let doc = null, index = 0, image = null, selected = null, drag = null;
  const followed = new Map();  // frame index -> boxes where a hand box will be followed (preview)
  const frames = new Map();  // frame index -> object URL of its JPEG

  async function frameUrl(n) {
    if (!frames.has(n)) {
      const response = await faceveil.api("GET", `${api}/frames/${n}`);
      frames.set(n, URL.createObjectURL(await response.blob()));
    }
    return frames.get(n);
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("a frame could not be shown"));
      img.src = url;
    });
  }

  const fps = () => {
    const text = doc.header.source.fps;
    if (!text) return 25;
    const [a, b] = text.split("/").map(Number);
    return b ? a / b : a;
  };
  const time = (n) => `${(n / fps()).toFixed(2)} s`;
  const kept = (track) => track != null && doc.header.tracks[String(track)] && doc.header.tracks[String(track)].keep;

  function countEdits() {
    let added = 0, removed = 0;
    for (const f of doc.frames) for (const r of f.regions) {
      if (r.source === "manual") added++;
      if (r.removed) removed++;
    }
    const keptTracks = Object.keys(doc.header.tracks).filter((t) => doc.header.tracks[t].keep);
    edits.textContent = `kept tracks: ${keptTracks.join(", ") || "none"} · boxes added: ${added} · removed: ${removed}`;
    root.dataset.added = String(added);
    root.dataset.removed = String(removed);
  }

  function draw() {
    if (!image) return;
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    ctx.drawImage(image, 0, 0);
    const line = Math.max(2, Math.round(canvas.width / 400));
    doc.frames[index].regions.forEach((r, i) => {
      const [x1, y1, x2, y2] = r.box;
      ctx.lineWidth = i === selected ? line * 2 : line;
      ctx.setLineDash(r.removed || kept(r.track) ? [6, 4] : []);
      ctx.strokeStyle = r.removed ? "#9aa6b3" : kept(r.track) ? "#1f9d55" : r.source === "manual" ? "#ffd000" : "#ff2d55";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    });
    ctx.setLineDash([3, 3]);
    ctx.strokeStyle = "#ffd000";
    for (const [x1, y1, x2, y2] of followed.get(index) || []) ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (drag && drag.moved) {
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#ffd000";
      ctx.strokeRect(drag.x, drag.y, drag.cx - drag.x, drag.cy - drag.y);
    }
    ctx.setLineDash([]);
    label.textContent = `frame ${index + 1} of ${doc.frames.length} · ${time(index)}`;
    deleteButton.disabled = selected == null;
    root.dataset.frame = String(index);
  }

  async function show(n) {
    const wanted = index = Math.max(0, Math.min(doc.frames.length - 1, n));
    selected = null;
    const loaded = await loadImage(await frameUrl(wanted));
    if (wanted !== index) return;  // stepped on meanwhile: that frame draws itself
    image = loaded;
    draw();
    root.dataset.ready = "true";
  }

  async function cards() {
    const list = document.getElementById("tracks");
    list.textContent = "";
    for (const [id, track] of Object.entries(doc.header.tracks)) {
      const item = document.createElement("li");
      item.className = "track" + (track.keep ? " kept" : "");
      item.dataset.track = id;
      const crop = document.createElement("canvas");
      const region = doc.frames[track.best].regions.find((r) => String(r.track) === id);
      const img = await loadImage(await frameUrl(track.best));
      const [x1, y1, x2, y2] = region ? region.box : [0, 0, img.naturalWidth, img.naturalHeight];
      const pad = 0.25 * Math.max(x2 - x1, y2 - y1);
      const sx = Math.max(0, x1 - pad), sy = Math.max(0, y1 - pad);
      const sw = Math.min(img.naturalWidth - sx, x2 - x1 + 2 * pad), sh = Math.min(img.naturalHeight - sy, y2 - y1 + 2 * pad);
      crop.width = 160; crop.height = Math.max(1, Math.round((160 * sh) / Math.max(sw, 1)));
      crop.getContext("2d").drawImage(img, sx, sy, sw, sh, 0, 0, crop.width, crop.height);
      const facts = document.createElement("p");
      facts.textContent = `track ${id} · ${time(track.first)}–${time(track.last)} · ${track.frames} frames`;
      const toggle = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox"; box.className = "keep"; box.checked = track.keep;
      box.addEventListener("change", () => {
        track.keep = box.checked;
        item.className = "track" + (track.keep ? " kept" : "");
        countEdits(); draw();
      });
      toggle.append(box, " keep visible");
      const go = document.createElement("button");
      go.type = "button"; go.className = "link"; go.textContent = "show";
      go.addEventListener("click", () => show(track.best));
      item.append(crop, facts, toggle, " ", go);
      list.append(item);
    }
  }

  async function load(response) {
    doc = await response.json();
    countEdits();
    await cards();
    await show(index);
  }

  function point(e) {
    const rect = canvas.getBoundingClientRect();
    return [((e.clientX - rect.left) * canvas.width) / rect.width, ((e.clientY - rect.top) * canvas.height) / rect.height];
  }

  canvas.addEventListener("mousedown", (e) => {
    const [x, y] = point(e);
    drag = { x, y, cx: x, cy: y, moved: false };
  });
  canvas.addEventListener("mousemove", (e) => {
    if (!drag) return;
    [drag.cx, drag.cy] = point(e);
    drag.moved = Math.abs(drag.cx - drag.x) > 4 || Math.abs(drag.cy - drag.y) > 4;
    draw();
  });
  canvas.addEventListener("mouseup", () => {
    if (!drag) return;
    const d = drag; drag = null;
    const regions = doc.frames[index].regions;
    if (d.moved) {  // a new box drawn by hand: hidden, and followed through the video at render
      const box = [Math.min(d.x, d.cx), Math.min(d.y, d.cy), Math.max(d.x, d.cx), Math.max(d.y, d.cy)]
        .map((v, i) => Math.max(0, Math.min(i % 2 ? canvas.height : canvas.width, v)));
      regions.push({ box, track: null, score: 1.0, source: "manual" });
      selected = regions.length - 1;
      preview(index, box);
    } else {  // a click selects the smallest box under it
      let best = null, area = Infinity;
      regions.forEach((r, i) => {
        const [x1, y1, x2, y2] = r.box;
        if (d.x >= x1 && d.x <= x2 && d.y >= y1 && d.y <= y2 && (x2 - x1) * (y2 - y1) < area) { best = i; area = (x2 - x1) * (y2 - y1); }
      });
      selected = best;
    }
    countEdits(); draw();
  });

  async function preview(frame, box) {  // show where the render will follow the drawn box
    try {
      const response = await faceveil.api("POST", `${api}/follow`, JSON.stringify({ frame, box }),
        { "Content-Type": "application/json" });
      const answer = await response.json();
      for (const [n, b] of Object.entries(answer.boxes)) {
        if (Number(n) === frame) continue;
        if (!followed.has(Number(n))) followed.set(Number(n), []);
        followed.get(Number(n)).push(b);
      }
      root.dataset.followed = String(Object.keys(answer.boxes).length);
      draw();
    } catch (error) {
      faceveil.status(error.message, "error");
    }
  }

  function deleteSelected() {
    if (selected == null) return;
    const regions = doc.frames[index].regions;
    const r = regions[selected];
    if (r.source === "manual") {  // its preview goes with it; the other hand boxes are previewed again
      regions.splice(selected, 1);
      followed.clear();
      doc.frames.forEach((f) => f.regions.filter((m) => m.source === "manual").forEach((m) => preview(f.frame, m.box)));
    } else {
      r.removed = !r.removed;
    }
    selected = null;
    countEdits(); draw();
  }

  deleteButton.addEventListener("click", deleteSelected);
  document.getElementById("prev").addEventListener("click", () => show(index - 1));
  document.getElementById("next").addEventListener("click", () => show(index + 1));
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement) return;
    if (e.key === "ArrowRight") { e.preventDefault(); show(index + 1); }
    if (e.key === "ArrowLeft") { e.preventDefault(); show(index - 1); }
    if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); deleteSelected(); }
  });

  function body() {
    // kept flags are the header's: the server marks the regions
    const frames = doc.frames.map((f) => Object.assign({}, f, { regions: f.regions.map((r) => { const c = Object.assign({}, r); delete c.kept; return c; }) }));
    return JSON.stringify({ header: doc.header, frames });
  }

  document.getElementById("keep-face").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      await faceveil.api("PUT", `${api}/regions`, body(), { "Content-Type": "application/json" });
      faceveil.status("comparing the faces with the photo…");
      await load(await faceveil.api("POST", `${api}/keep-face`, file, { "Content-Type": "application/octet-stream" }));
      faceveil.status("the tracks of that person are kept visible", "ok");
    } catch (error) {
      faceveil.status(error.message, "error");
    }
    e.target.value = "";
  });

  document.getElementById("approve").addEventListener("click", async () => {
    try {
      await faceveil.api("PUT", `${api}/regions`, body(), { "Content-Type": "application/json" });
      const answer = await (await faceveil.api("POST", `${api}/approve`)).json();
      faceveil.status("approved: rendering…");
      document.getElementById("approve").disabled = true;
      const poll = async () => {
        const job = await (await faceveil.api("GET", api)).json();
        if (job.status === "done") {
          const link = document.getElementById("download");
          link.href = job.result_url; link.download = ""; link.hidden = false;
          faceveil.status(`done: ${answer.kept_tracks.length} track(s) kept, ${answer.added} box(es) added, ${answer.removed} removed; the original is deleted`, "ok");
          root.dataset.done = "true";
        } else if (job.status === "failed" || job.status === "cancelled") {
          faceveil.status(job.error ? job.error.message : job.status, "error");
        } else {
          setTimeout(poll, 500);
        }
      };
      poll();
    } catch (error) {
      faceveil.status(error.message, "error");
    }
  });

  faceveil.api("GET", `${api}/regions`).then(load).catch((error) => faceveil.status(error.message, "error"));
})();
