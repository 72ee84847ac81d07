// Photos page: drop photos, anonymize each through the API, compare before/after, download.
"use strict";

(() => {
  const form = document.getElementById("options");
  const list = document.getElementById("results");
  const template = document.getElementById("result-item");
  const summary = document.getElementById("summary");
  const all = document.getElementById("download-all");
  const done = [];  // {name, blob}
  let pending = 0, totalFaces = 0;

  function outputName(name, type) {
    const ext = { "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp" }[type] || "";
    const stem = name.replace(/\.[^.]*$/, "") || "photo";
    let candidate = `${stem}.anonymized${ext}`, n = 2;
    while (done.some((d) => d.name === candidate)) candidate = `${stem}.anonymized-${n++}${ext}`;
    return candidate;
  }

  function refreshSummary() {
    const failed = list.querySelectorAll(".state.error").length;
    let text = `${done.length} photo(s) done, ${totalFaces} face(s) hidden`;
    if (pending) text = `processing ${pending} photo(s)… ` + text;
    if (failed) text += `, ${failed} failed`;
    summary.textContent = text;
    all.disabled = done.length === 0 || pending > 0;
    faceveil.status(pending ? "processing…" : done.length ? "done" : "", pending ? "" : "ok");
  }

  // Review before release: the original is shown from the browser's own copy (never from the
  // server); the faces found are outlined; click keeps one, a drag adds a box; approve renders.
  function review(item, file) {
    return new Promise((resolve, reject) => {
      const panel = item.querySelector(".review-photo");
      const canvas = panel.querySelector(".review-canvas");
      const ctx = canvas.getContext("2d");
      const img = new Image();
      let faces = [], added = [], drag = null;
      const draw = () => {
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        ctx.drawImage(img, 0, 0);
        ctx.lineWidth = Math.max(2, Math.round(canvas.width / 400));
        for (const f of faces) { ctx.strokeStyle = f.keep ? "#1f9d55" : "#ff2d55"; ctx.strokeRect(f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]); }
        ctx.strokeStyle = "#ffd000";
        for (const b of added) ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
        if (drag && drag.moved) ctx.strokeRect(drag.x, drag.y, drag.cx - drag.x, drag.cy - drag.y);
        item.dataset.kept = String(faces.filter((f) => f.keep).length);
        item.dataset.added = String(added.length);
      };
      const point = (e) => {
        const r = canvas.getBoundingClientRect();
        return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
      };
      canvas.addEventListener("mousedown", (e) => { const [x, y] = point(e); drag = { x, y, cx: x, cy: y, moved: false }; });
      canvas.addEventListener("mousemove", (e) => {
        if (!drag) return;
        [drag.cx, drag.cy] = point(e);
        drag.moved = Math.abs(drag.cx - drag.x) > 4 || Math.abs(drag.cy - drag.y) > 4;
        draw();
      });
      canvas.addEventListener("mouseup", () => {
        const d = drag; drag = null;
        if (!d) return;
        if (d.moved) added.push([Math.min(d.x, d.cx), Math.min(d.y, d.cy), Math.max(d.x, d.cx), Math.max(d.y, d.cy)]);
        else for (const f of faces) if (d.x >= f.box[0] && d.x <= f.box[2] && d.y >= f.box[1] && d.y <= f.box[3]) f.keep = !f.keep;
        draw();
      });
      panel.querySelector(".approve").addEventListener("click", async () => {
        try {
          const query = faceveil.optionsQuery(form);
          query.set("keep", JSON.stringify(faces.filter((f) => f.keep).map((f) => f.box)));
          query.set("add", JSON.stringify(added));
          const response = await faceveil.api("POST", "/api/v1/photos/review?" + query, file,
            { "Content-Type": "application/octet-stream" });
          panel.hidden = true;
          resolve(response);
        } catch (error) { reject(error); }
      });
      const query = new URLSearchParams({ preset: form.elements.preset.value });
      faceveil.api("POST", "/api/v1/photos/detect?" + query, file, { "Content-Type": "application/octet-stream" })
        .then((r) => r.json()).then((found) => {
          faces = found.faces.map((f) => ({ box: f.box, keep: false }));
          img.onload = () => { draw(); panel.hidden = false; item.dataset.review = "ready"; };
          img.src = URL.createObjectURL(file);
          item.querySelector(".state").textContent = `${faces.length} face(s) found: review`;
        }).catch(reject);
    });
  }

  async function process(file) {
    const item = template.content.firstElementChild.cloneNode(true);
    item.querySelector(".name").textContent = file.name;
    const state = item.querySelector(".state");
    state.textContent = "uploading…";
    list.prepend(item);
    pending++;
    refreshSummary();
    try {
      const query = faceveil.optionsQuery(form);
      const response = document.getElementById("review").checked ? await review(item, file)
        : await faceveil.api("POST", "/api/v1/photos/anonymize?" + query, file,
          { "Content-Type": "application/octet-stream" });
      const faces = Number(response.headers.get("X-Faceveil-Faces"));
      const blob = await response.blob();
      const name = outputName(file.name, blob.type);
      done.push({ name, blob });
      totalFaces += faces;
      item.querySelector(".faces").textContent = `${faces} face${faces === 1 ? "" : "s"} found`;
      state.textContent = "done";
      state.className = "state ok";
      const compare = item.querySelector(".compare");
      item.querySelector(".before").src = URL.createObjectURL(file);
      item.querySelector(".after").src = URL.createObjectURL(blob);
      const slider = item.querySelector(".slider");
      const wrap = item.querySelector(".after-wrap");
      slider.addEventListener("input", () => { wrap.style.clipPath = `inset(0 0 0 ${slider.value}%)`; });
      compare.hidden = false;
      const link = item.querySelector(".download");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      link.hidden = false;
    } catch (error) {
      state.textContent = "failed: " + error.message;
      state.className = "state error";
    } finally {
      pending--;
      refreshSummary();
    }
  }

  async function run(files) {
    const images = files.filter((f) => f.size > 0);
    if (!images.length) return;
    faceveil.status("uploading…");
    for (let i = 0; i < images.length; i += 2) {  // two at a time keeps the page responsive
      await Promise.all(images.slice(i, i + 2).map(process));
    }
  }

  all.addEventListener("click", async () => {
    const files = await Promise.all(done.map(async (d) => ({ name: d.name, bytes: new Uint8Array(await d.blob.arrayBuffer()) })));
    const link = document.createElement("a");
    link.href = URL.createObjectURL(zipFiles(files));
    link.download = "anonymized-photos.zip";
    document.body.appendChild(link);
    link.click();
    link.remove();
  });

  faceveil.dropZone(document.getElementById("drop"), document.getElementById("files"), run);
})();
