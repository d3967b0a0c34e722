// edgefn admin UI: conveniences only. Every page works without this script.
"use strict";

// Sizes as the server writes them (format.rs): "512 bytes", "1.2 KB", "16 MB".
function size(n) {
  if (n < 1024) return `${n} bytes`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  const text = value < 10 ? value.toFixed(1) : value.toFixed(0);
  return `${text.replace(/\.0$/, "")} ${units[unit]}`;
}

// Upload: drop a file on the field; only .wasm or .wat; the module name follows the file name
// until the name is typed by hand.
for (const zone of document.querySelectorAll("[data-dropzone]")) {
  const input = zone.querySelector("input[type=file]");
  const chosen = zone.querySelector("[data-file]");
  const name = document.getElementById("name");
  let nameFromFile = name && name.value === "";
  if (name) name.addEventListener("input", () => { nameFromFile = false; });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    input.files = e.dataTransfer.files;
    input.dispatchEvent(new Event("change"));
  });
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (!file) return;
    const wasm = /\.(wasm|wat)$/i.test(file.name);
    input.setCustomValidity(wasm ? "" : "Only .wasm and .wat files can be uploaded.");
    chosen.textContent = wasm ? `${file.name}, ${size(file.size)}` : `${file.name} is not a .wasm or .wat file.`;
    if (wasm && name && nameFromFile) {
      name.value = file.name.replace(/\.(wasm|wat)$/i, "").replace(/[^A-Za-z0-9._+-]/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 64);
    }
  });
}

// Run: the signature shown and the argument template follow the chosen function,
// unless the arguments were edited.
const fn = document.getElementById("function");
const args = document.getElementById("args");
if (fn && args) {
  fn.addEventListener("change", () => {
    const option = fn.selectedOptions[0];
    document.getElementById("signature").textContent = option.dataset.signature;
    if (args.value === args.dataset.template) {
      args.value = option.dataset.template;
      args.dataset.template = option.dataset.template;
    }
  });
}

// A secret shown once: its copy button puts it on the clipboard.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  const source = button && document.querySelector(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent.trim()).then(() => { button.textContent = "Copied"; });
  }
});
