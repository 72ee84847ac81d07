// Jobs page: every job with its status; retry, cancel and delete; refreshed every two seconds.
"use strict";

(() => {
  const body = document.getElementById("jobs-body");

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await onClick(); faceveil.status(`${label.toLowerCase()}: done`, "ok"); }
      catch (error) { faceveil.status(error.message, "error"); }
      refresh();
    });
    return b;
  }

  function row(job) {
    const tr = document.createElement("tr");
    tr.dataset.id = job.id;
    tr.append(cell(job.input_name));
    const status = cell(job.status + (job.error ? ` — ${job.error.message}` : ""));
    status.className = "status-" + job.status;
    tr.append(status);
    const p = job.progress;
    const progress = p.frames_total ? `${p.frames_done} / ${p.frames_total} frames` : p.frames_done ? `${p.frames_done} frames` : "";
    tr.append(cell(progress + (p.fps ? ` · ${p.fps.toFixed(1)} fps` : "")));
    tr.append(cell(faceveil.when(job.created_at)));
    tr.append(cell(faceveil.when(job.expires_at)));
    const actions = document.createElement("td");
    actions.className = "actions";
    if (job.status === "done") {
      const a = document.createElement("a");
      a.href = job.result_url;
      a.textContent = "Download";
      actions.append(a, " ");
    }
    if (job.status === "review" && job.review_url) {
      const a = document.createElement("a");
      a.href = job.review_url;
      a.textContent = "Review";
      actions.append(a, " ");
    }
    if (job.status === "queued" || job.status === "running") {
      actions.append(button("Cancel", () => faceveil.api("POST", `/api/v1/jobs/${job.id}/cancel`)));
    }
    if (job.retryable) actions.append(button("Retry", () => faceveil.api("POST", `/api/v1/jobs/${job.id}/retry`)));
    actions.append(button("Delete", () => faceveil.api("DELETE", `/api/v1/jobs/${job.id}`)));
    tr.append(actions);
    return tr;
  }

  async function refresh() {
    try {
      const response = await faceveil.api("GET", "/api/v1/jobs");
      const { jobs } = await response.json();
      body.replaceChildren(...(jobs.length ? jobs.map(row) : [Object.assign(document.createElement("tr"), { innerHTML: '<td colspan="6">No jobs yet.</td>' })]));
    } catch (error) {
      faceveil.status(error.message, "error");
    }
  }

  refresh();
  setInterval(refresh, 2000);
})();
