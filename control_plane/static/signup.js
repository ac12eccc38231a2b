// Suggests a portal address from the organization's name, checks it as the user types,
// and stops a second submit while the first one is on its way.
(() => {
  const form = document.getElementById("signup-form");
  const name = document.getElementById("organization_name");
  const slug = document.getElementById("slug");
  const status = document.getElementById("slug-status");
  let edited = slug.value !== "";
  let timer;

  const check = (params) => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const response = await fetch("/signup/slug?" + new URLSearchParams(params));
      if (!response.ok) return;
      const body = await response.json();
      if (!edited) slug.value = body.slug;
      status.textContent = body.slug ? body.message : "";
      status.className = "hint " + (body.available ? "good" : "bad");
    }, 250);
  };

  name.addEventListener("input", () => { if (!edited) check({ name: name.value }); });
  slug.addEventListener("input", () => { edited = slug.value !== ""; check({ slug: slug.value }); });
  form.addEventListener("submit", (event) => {
    const button = document.getElementById("signup-submit");
    if (button.disabled) { event.preventDefault(); return; }
    button.disabled = true;
    button.textContent = "Creating…";
  });
})();
