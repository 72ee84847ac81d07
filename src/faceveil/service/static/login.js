// Login page: trade the access secret for a session cookie.
"use strict";

(() => {
  const form = document.getElementById("login");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    faceveil.status("checking…");
    try {
      await faceveil.api("POST", "/api/v1/auth/login", JSON.stringify({ secret: form.secret.value }),
        { "Content-Type": "application/json" });
      window.location = form.dataset.next || "/photos";
    } catch (error) {
      faceveil.status(error.message, "error");
      form.secret.select();
    }
  });
})();
