// edgefn admin UI: conveniences only. Every page works without this script.
"use strict";

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
    chosen.textContent = wasm ? `${file.name}, ${(file.size / 1024).toFixed(1)} KB` : `${file.name} is not a .wasm or .wat file.`;
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
