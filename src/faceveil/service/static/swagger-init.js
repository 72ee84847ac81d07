// Starts Swagger UI on the local OpenAPI schema (kept out of the page so no inline script is needed).
"use strict";

window.addEventListener("load", () => {
  const el = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: el.dataset.spec, dom_id: "#swagger-ui", deepLinking: true });
});
