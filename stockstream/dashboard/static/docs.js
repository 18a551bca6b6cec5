// Starts the vendored Swagger UI on /docs (a file, not an inline script, so the CSP stays strict).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
