// Pose page: each photo goes to the pose endpoints; the drawn picture and the landmarks come back.
"use strict";

(() => {
  const form = document.getElementById("options");
  const list = document.getElementById("results");
  const template = document.getElementById("result-item");
  const stem = (name) => name.replace(/\.[^.]*$/, "") || "photo";

  async function process(file) {
    const item = template.content.firstElementChild.cloneNode(true);
    item.querySelector(".name").textContent = file.name;
    const state = item.querySelector(".state");
    state.textContent = "uploading…";
    list.prepend(item);
    faceveil.status("processing…");
    try {
      const query = faceveil.optionsQuery(form);
      const headers = { "Content-Type": "application/octet-stream" };
      const [picture, landmarks] = await Promise.all([
        faceveil.api("POST", "/api/v1/pose/image?" + query, file, headers),
        faceveil.api("POST", "/api/v1/pose?" + query, file, headers),
      ]);
      const people = Number(picture.headers.get("X-Faceveil-People"));
      const blob = await picture.blob();
      const json = await landmarks.text();
      item.querySelector(".people").textContent = `${people} ${people === 1 ? "person" : "people"} found`;
      const img = item.querySelector(".drawn");
      img.src = URL.createObjectURL(blob);
      img.hidden = false;
      const download = item.querySelector(".download");
      download.href = img.src;
      download.download = `${stem(file.name)}.pose${{ "image/png": ".png", "image/webp": ".webp" }[blob.type] || ".jpg"}`;
      download.hidden = false;
      const data = item.querySelector(".landmarks");
      data.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
      data.download = `${stem(file.name)}.pose.json`;
      data.hidden = false;
      state.textContent = "done";
      state.className = "state ok";
      faceveil.status("done", "ok");
    } catch (error) {
      state.textContent = "failed: " + error.message;
      state.className = "state error";
      faceveil.status(error.message, "error");
    }
  }

  faceveil.dropZone(document.getElementById("drop"), document.getElementById("files"), async (files) => {
    for (const file of files) await process(file);
  });
})();
