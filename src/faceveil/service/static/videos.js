// Videos page: upload with a progress bar, then follow the job (server-sent events), preview, download.
"use strict";

(() => {
  const form = document.getElementById("options");
  const section = document.getElementById("job");
  const uploadBar = document.getElementById("upload-bar");
  const uploadText = document.getElementById("upload-text");
  const jobBar = document.getElementById("job-bar");
  const jobText = document.getElementById("job-text");
  const figures = document.getElementById("job-figures");
  const cancel = document.getElementById("cancel");
  const download = document.getElementById("download");
  const preview = document.getElementById("preview");
  const manifest = document.getElementById("manifest");
  const playback = document.getElementById("playback");
  let current = null, events = null, xhr = null;

  function reset(name) {
    section.hidden = false;
    document.getElementById("job-name").textContent = name;
    uploadBar.value = 0; jobBar.value = 0; jobBar.removeAttribute("value");
    uploadText.textContent = ""; jobText.textContent = "waiting for the upload"; figures.textContent = "";
    download.hidden = true; preview.hidden = true; preview.removeAttribute("src"); cancel.hidden = false;
    manifest.hidden = true; playback.hidden = true; playback.textContent = "";
    document.getElementById("review-link").hidden = true;
    if (events) events.close();
  }

  function show(job) {
    current = job;
    const p = job.progress;
    if (p.frames_total) {
      jobBar.max = p.frames_total;
      jobBar.value = p.frames_done;
    }
    const parts = [];
    if (p.frames_done) parts.push(`frame ${p.frames_done}${p.frames_total ? " of " + p.frames_total : ""}`);
    if (p.fps) parts.push(`${p.fps.toFixed(1)} fps`);
    if (p.eta_s != null && job.status === "running") parts.push(`about ${faceveil.duration(p.eta_s)} left`);
    parts.push(`${p.faces} face detection${p.faces === 1 ? "" : "s"}`);
    if (p.tracks != null) parts.push(`${p.tracks} distinct face${p.tracks === 1 ? "" : "s"}`);
    figures.textContent = parts.join(" · ");
    const words = { queued: "queued, waiting for a worker", running: "processing", done: "done", review: "waiting for review",
      failed: "failed", cancelled: "cancelled", expired: "expired (result deleted)" };
    jobText.textContent = words[job.status] || job.status;
    if (job.status === "running") faceveil.status("processing…");
    if (job.status === "queued") faceveil.status("queued");
    if (job.status === "done") {
      jobBar.max = 1; jobBar.value = 1;
      faceveil.status("done: every face found is hidden", "ok");
      download.href = job.result_url;
      download.download = "";
      download.textContent = `Download (${faceveil.bytes(job.output_bytes)})`;
      download.hidden = false;
      if (job.manifest_url) {
        manifest.href = job.manifest_url;
        manifest.download = "";
        manifest.hidden = false;
      }
      if (job.encrypted) {  // a browser cannot play it: say how to
        playback.textContent = job.playback;
        playback.hidden = false;
      } else {
        preview.src = job.result_url + "?inline=true";
        preview.hidden = false;
      }
      cancel.hidden = true;
    } else if (job.status === "review") {
      jobBar.max = 1; jobBar.value = 1;
      faceveil.status("detection done: review the faces before release", "ok");
      const review = document.getElementById("review-link");
      review.href = job.review_url;
      review.hidden = false;
      cancel.hidden = true;
    } else if (job.status === "failed" || job.status === "cancelled") {
      faceveil.status(job.error ? `${job.status}: ${job.error.message}` : job.status, "error");
      cancel.hidden = true;
    }
  }

  function follow(id) {
    events = new EventSource(`/api/v1/jobs/${id}/events`);
    events.onmessage = (e) => {
      const job = JSON.parse(e.data);
      show(job);
      if (["done", "failed", "cancelled", "expired", "review"].includes(job.status)) events.close();
    };
    events.onerror = () => {
      // The stream ends with the job; if it broke earlier, poll once to show the final state.
      events.close();
      faceveil.api("GET", `/api/v1/jobs/${id}`).then((r) => r.json()).then((job) => {
        show(job);
        if (!["done", "failed", "cancelled", "expired", "review"].includes(job.status)) setTimeout(() => follow(id), 2000);
      }).catch((err) => faceveil.status(err.message, "error"));
    };
  }

  function upload(file) {
    reset(file.name);
    const params = faceveil.optionsQuery(form);
    params.set("filename", file.name);
    xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/jobs?" + params);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", faceveil.csrf());
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      uploadBar.value = (100 * e.loaded) / e.total;
      uploadText.textContent = `${faceveil.bytes(e.loaded)} of ${faceveil.bytes(e.total)}`;
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (ignored) { /* not JSON */ }
      if (xhr.status === 201 && body) {
        uploadBar.value = 100;
        uploadText.textContent = `${faceveil.bytes(file.size)} uploaded`;
        show(body);
        follow(body.id);
      } else {
        const message = body && body.error ? body.error.message : `the server answered ${xhr.status}`;
        faceveil.status("upload refused: " + message, "error");
        jobText.textContent = "not started";
        cancel.hidden = true;
      }
    };
    xhr.onerror = () => { faceveil.status("the upload failed (connection lost)", "error"); cancel.hidden = true; };
    xhr.onabort = () => { faceveil.status("upload cancelled", "error"); cancel.hidden = true; };
    faceveil.status("uploading…");
    xhr.send(file);
  }

  cancel.addEventListener("click", async () => {
    if (!current) { if (xhr) xhr.abort(); return; }
    try {
      const response = await faceveil.api("POST", `/api/v1/jobs/${current.id}/cancel`);
      show(await response.json());
    } catch (error) {
      faceveil.status(error.message, "error");
    }
  });

  faceveil.dropZone(document.getElementById("drop"), document.getElementById("file"), (files) => {
    if (files.length) { current = null; upload(files[0]); }
  });
})();
