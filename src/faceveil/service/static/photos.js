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
      const response = await faceveil.api("POST", "/api/v1/photos/anonymize?" + query, file,
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
