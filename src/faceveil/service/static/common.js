// Shared helpers of the faceveil pages: API calls with the CSRF token, status line, formatting.
"use strict";

const faceveil = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  function status(text, kind) {
    const el = document.getElementById("status");
    el.textContent = text || "";
    el.className = "status" + (kind ? " " + kind : "");
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error.message;
    } catch (ignored) { /* not JSON */ }
    return `the server answered ${response.status}`;
  }

  async function api(method, url, body, headers) {
    const response = await fetch(url, {
      method,
      body,
      headers: Object.assign({ "X-CSRF-Token": csrf() }, headers || {}),
      credentials: "same-origin",
    });
    if (response.status === 401 && window.location.pathname !== "/login") {
      window.location = "/login?next=" + encodeURIComponent(window.location.pathname);
      throw new Error("please log in");
    }
    if (!response.ok) throw new Error(await errorText(response));
    return response;
  }

  function optionsQuery(form) {
    const params = new URLSearchParams();
    for (const el of form.elements) {
      if (!el.name) continue;
      params.set(el.name, el.type === "checkbox" ? String(el.checked) : el.value);
    }
    return params;
  }

  function bytes(n) {
    if (n == null) return "";
    const units = ["bytes", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function duration(seconds) {
    if (seconds == null || !isFinite(seconds)) return "";
    seconds = Math.round(seconds);
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m ? `${m} min ${s} s` : `${s} s`;
  }

  function when(epoch) {
    return epoch ? new Date(epoch * 1000).toLocaleString() : "";
  }

  function dropZone(zone, input, onFiles) {
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      onFiles(Array.from(e.dataTransfer.files));
    });
    input.addEventListener("change", () => { onFiles(Array.from(input.files)); input.value = ""; });
  }

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      await api("POST", "/api/v1/auth/logout");
      window.location = "/login";
    });
  }

  return { api, status, optionsQuery, bytes, duration, when, dropZone, csrf };
})();
