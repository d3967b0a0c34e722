// Builds app.js into a wasi:http component with ComponentizeJS (`node build.mjs`).
// The world in wit/ names wasi:http 0.2.10, the version its JavaScript engine exports.
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdir, readFile, writeFile } from "node:fs/promises";

const source = await readFile("app.js", "utf8");
const { component } = await componentize(source, { sourceName: "app.js", witPath: "wit", worldName: "app" });
await mkdir("build", { recursive: true });
await writeFile("build/{{name}}.wasm", component);
console.log(`build/{{name}}.wasm: ${component.byteLength} bytes`);
