// Live camera page: camera frames go to the server over a WebSocket, anonymized frames come back.
// Only the frames that came back are drawn and recorded; the raw camera picture is never shown.
"use strict";

(() => {
  const form = document.getElementById("options");
  const start = document.getElementById("start");
  const stop = document.getElementById("stop");
  const record = document.getElementById("record");
  const figures = document.getElementById("figures");
  const camera = document.getElementById("camera");
  const output = document.getElementById("output");
  const recording = document.getElementById("recording");
  const grab = document.createElement("canvas");
  let stream = null, socket = null, recorder = null, chunks = [], running = false;
  let waiting = null;  // resolves with the next anonymized frame

  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${window.location.host}/api/v1/live?${faceveil.optionsQuery(form)}`;
  }

  function nextFrame() {
    return new Promise((resolve, reject) => { waiting = { resolve, reject }; });
  }

  function openSocket() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(socketUrl());
      ws.binaryType = "blob";
      let image = null;
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error("could not connect to the live endpoint"));
      ws.onclose = (e) => {
        if (running) faceveil.status(`live session ended${e.reason ? ": " + e.reason : ""}`, "error");
        if (waiting) waiting.reject(new Error("closed"));
        halt();
      };
      ws.onmessage = (e) => {
        if (typeof e.data !== "string") { image = e.data; return; }
        const info = JSON.parse(e.data);
        if (info.error) { if (waiting) waiting.reject(new Error(info.error)); return; }
        figures.textContent = `${info.fps.toFixed(1)} fps · ${info.faces} face${info.faces === 1 ? "" : "s"} · ${info.latency_ms.toFixed(0)} ms server time`;
        output.dataset.faces = String(info.faces);
        if (waiting) waiting.resolve(image);
      };
    });
  }

  async function loop() {
    const ctx = grab.getContext("2d");
    const out = output.getContext("2d");
    while (running) {
      if (camera.readyState < 2) { await new Promise((r) => setTimeout(r, 30)); continue; }
      grab.width = camera.videoWidth; grab.height = camera.videoHeight;
      ctx.drawImage(camera, 0, 0);
      const jpeg = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.85));
      const pending = nextFrame();
      socket.send(jpeg);
      let blob;
      try { blob = await pending; } catch (error) { if (running) faceveil.status(error.message, "error"); continue; }
      const bitmap = await createImageBitmap(blob);
      if (output.width !== bitmap.width) { output.width = bitmap.width; output.height = bitmap.height; }
      out.drawImage(bitmap, 0, 0);
      output.dataset.frames = String(Number(output.dataset.frames || 0) + 1);
      bitmap.close();
    }
  }

  function halt() {
    running = false;
    if (recorder && recorder.state !== "inactive") recorder.stop();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (socket && socket.readyState <= 1) socket.close();
    stream = null; socket = null;
    start.disabled = false; stop.disabled = true; record.disabled = true; record.textContent = "Record";
  }

  start.addEventListener("click", async () => {
    start.disabled = true;
    faceveil.status("starting the camera…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
      camera.srcObject = stream;
      await camera.play();
      socket = await openSocket();
    } catch (error) {
      faceveil.status("cannot start: " + error.message, "error");
      halt();
      return;
    }
    running = true;
    stop.disabled = false; record.disabled = false;
    faceveil.status("live: every face is hidden before the picture is shown", "ok");
    loop();
  });

  stop.addEventListener("click", () => { halt(); faceveil.status("stopped"); });

  record.addEventListener("click", () => {
    if (recorder && recorder.state === "recording") { recorder.stop(); return; }
    chunks = [];
    recorder = new MediaRecorder(output.captureStream(25), { mimeType: "video/webm" });
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      const blob = new Blob(chunks, { type: "video/webm" });
      recording.href = URL.createObjectURL(blob);
      recording.download = "faceveil-live.webm";
      recording.textContent = `Download the recording (${faceveil.bytes(blob.size)})`;
      recording.hidden = false;
      record.textContent = "Record";
    };
    recorder.start(1000);
    record.textContent = "Stop recording";
  });
})();
