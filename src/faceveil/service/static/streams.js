// Streams page: add/edit/start/stop/delete the server's streams; a grid of anonymized previews
// (the newest anonymized JPEG, polled), figures, errors and recordings, refreshed every second.
"use strict";

(() => {
  const form = document.getElementById("stream-form");
  const grid = document.getElementById("streams");
  const load = document.getElementById("server-load");
  const player = document.getElementById("player");
  const playerBox = document.getElementById("player-box");
  const cards = new Map();
  let known = [];

  async function loadCameras() {
    try {
      const { cameras } = await (await faceveil.api("GET", "/api/v1/streams/cameras")).json();
      for (const camera of cameras) {
        const option = document.createElement("option");
        option.value = camera.device;
        option.textContent = `${camera.name} (${camera.device})`;
        form.elements.camera.append(option);
      }
    } catch (error) { faceveil.status(error.message, "error"); }
  }

  function body() {
    const el = form.elements;
    return JSON.stringify({
      name: el.name.value,
      source: el.camera.value || el.url.value.trim(),
      size: el.size.value,
      record: el.record.checked,
      segment_s: Number(el.segment_s.value),
      push: el.push.value.trim() || null,
      preview: el.preview.checked,
      mode: el.mode.value,
      color: el.color.value,
      voice: el.voice.value,
    });
  }

  function resetForm() {
    form.reset();
    form.elements.id.value = "";
    document.getElementById("save").textContent = "Add stream";
    document.getElementById("cancel-edit").hidden = true;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = form.elements.id.value;
    try {
      if (id) {
        await faceveil.api("PUT", `/api/v1/streams/${id}`, body(), { "Content-Type": "application/json" });
        faceveil.status("stream saved", "ok");
      } else {
        await faceveil.api("POST", "/api/v1/streams?start=true", body(), { "Content-Type": "application/json" });
        faceveil.status("stream added and started", "ok");
      }
      resetForm();
    } catch (error) { faceveil.status(error.message, "error"); }
    refresh();
  });
  document.getElementById("cancel-edit").addEventListener("click", resetForm);

  function edit(stream) {
    const el = form.elements, o = stream.options;
    el.id.value = stream.id;
    el.name.value = stream.name;
    if (stream.source_kind === "camera") { el.camera.value = stream.source; el.url.value = ""; }
    else { el.camera.value = ""; el.url.value = stream.source; }
    el.size.value = o.size; el.record.checked = o.record; el.segment_s.value = o.segment_s;
    el.push.value = o.push || ""; el.preview.checked = o.preview; el.mode.value = o.mode;
    el.color.value = o.color; el.voice.value = soundOf(o);
    document.getElementById("save").textContent = "Save stream";
    document.getElementById("cancel-edit").hidden = false;
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.action = label.toLowerCase();
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await onClick(); } catch (error) { faceveil.status(error.message, "error"); }
      b.disabled = false;
      refresh();
    });
    return b;
  }

  function pollPreview(card) {
    const img = card.img;
    if (!card.previewUrl) { img.hidden = true; return; }
    img.hidden = false;
    img.src = `${card.previewUrl}?t=${Date.now()}`;
  }

  function makeCard(stream) {
    const card = { el: document.createElement("section"), previewUrl: null };
    card.el.className = "stream";
    card.el.dataset.id = stream.id;
    card.title = document.createElement("h2");
    card.source = document.createElement("div");
    card.source.className = "source";
    card.state = document.createElement("div");
    card.state.className = "state";
    card.error = document.createElement("div");
    card.error.className = "error";
    card.figures = document.createElement("div");
    card.figures.className = "figures";
    card.settings = document.createElement("div");
    card.settings.className = "settings";
    card.img = document.createElement("img");
    card.img.className = "preview";
    card.img.alt = "anonymized preview";
    card.img.hidden = true;
    card.img.addEventListener("load", () => { card.img.dataset.frames = String(Number(card.img.dataset.frames || 0) + 1); setTimeout(() => pollPreview(card), 150); });
    card.img.addEventListener("error", () => setTimeout(() => pollPreview(card), 1000));
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(
      button("Start", () => faceveil.api("POST", `/api/v1/streams/${stream.id}/start`)),
      button("Stop", () => faceveil.api("POST", `/api/v1/streams/${stream.id}/stop`)),
      button("Edit", async () => edit(known.find((s) => s.id === stream.id))),
      button("Delete", () => faceveil.api("DELETE", `/api/v1/streams/${stream.id}`)),
    );
    card.recordings = document.createElement("ul");
    card.recordings.className = "recordings";
    card.el.append(card.title, card.source, card.settings, card.state, card.error, card.figures, card.img, actions, card.recordings);
    return card;
  }

  function soundOf(options) {
    if (options.voice === "disguise" || options.voice === "drop") return options.voice;
    return options.audio === "drop" ? "drop" : "keep";
  }

  const SOUND = { keep: "sound kept", disguise: "voices disguised", drop: "no sound (dropped)" };

  function figures(stream) {
    const f = stream.figures;
    if (stream.state !== "running") return "";
    return [
      f.fps != null ? `${f.fps.toFixed(1)} fps` : "",
      `${f.faces} face${f.faces === 1 ? "" : "s"} in view`,
      f.latency_p95_ms != null ? `p95 added latency ${Math.round(f.latency_p95_ms)} ms` : "",
      `${f.dropped} dropped`,
      `${f.reconnects} reconnects`,
      f.audio_s ? `sound ${faceveil.duration(f.audio_s)}` : "no sound",
    ].filter(Boolean).join(" · ");
  }

  async function showRecordings(card, stream) {
    try {
      const { recordings } = await (await faceveil.api("GET", stream.recordings_url)).json();
      card.recordings.replaceChildren(...recordings.map((r) => {
        const li = document.createElement("li");
        li.dataset.name = r.name;
        const play = document.createElement("button");
        play.type = "button";
        play.className = "link";
        play.textContent = "Play";
        play.addEventListener("click", () => { player.src = r.play_url; playerBox.hidden = false; player.play().catch(() => {}); });
        const download = document.createElement("a");
        download.href = r.url;
        download.textContent = "Download";
        download.setAttribute("download", "");
        li.append(`${r.name} · ${faceveil.bytes(r.bytes)}${r.recording ? " · recording" : ""} `, play, " ", download);
        return li;
      }));
    } catch (error) { /* the stream may just have been deleted */ }
  }

  function update(stream) {
    let card = cards.get(stream.id);
    if (!card) { card = makeCard(stream); cards.set(stream.id, card); grid.append(card.el); }
    card.title.textContent = stream.name;
    card.source.textContent = stream.source;
    card.settings.dataset.voice = soundOf(stream.options);
    card.settings.textContent = SOUND[soundOf(stream.options)];
    card.el.dataset.state = stream.state;
    card.state.textContent = stream.state + (stream.retry_in_s != null ? ` (next try in ${stream.retry_in_s} s)` : "");
    card.error.textContent = stream.error || "";
    card.figures.textContent = figures(stream);
    const wasShowing = card.previewUrl;
    card.previewUrl = stream.state === "running" ? stream.preview_url : null;
    if (card.previewUrl && !wasShowing) pollPreview(card);
    if (!card.previewUrl) card.img.hidden = true;
    showRecordings(card, stream);
  }

  async function refresh() {
    try {
      const { streams, server } = await (await faceveil.api("GET", "/api/v1/streams")).json();
      known = streams;
      load.textContent = `Server: ${server.running} of at most ${server.max_streams} streams running · CPU ${server.cpu_percent.toFixed(0)} % of ${server.cpus} cores` +
        (server.load_1m != null ? ` · load ${server.load_1m}` : "") + (server.gpu_percent != null ? ` · GPU ${server.gpu_percent} %` : "");
      for (const stream of streams) update(stream);
      for (const [id, card] of cards) {
        if (!streams.some((s) => s.id === id)) { card.el.remove(); cards.delete(id); }
      }
      grid.dataset.count = String(streams.length);
    } catch (error) { faceveil.status(error.message, "error"); }
  }

  loadCameras();
  refresh();
  setInterval(refresh, 1000);
})();
