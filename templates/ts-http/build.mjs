// Builds app.ts into a wasi:http component (`node build.mjs`): esbuild strips the types,
// ComponentizeJS makes the component. The world in wit/ names wasi:http 0.2.10, the
// version its JavaScript engine exports.
import { componentize } from "@bytecodealliance/componentize-js";
import { transform } from "esbuild";
import { mkdir, readFile, writeFile } from "node:fs/promises";

const typescript = await readFile("app.ts", "utf8");
const { code } = await transform(typescript, { loader: "ts", format: "esm", target: "es2022" });
const { component } = await componentize(code, { sourceName: "app.js", witPath: "wit", worldName: "app" });
await mkdir("build", { recursive: true });
await writeFile("build/{{name}}.wasm", component);
console.log(`build/{{name}}.wasm: ${component.byteLength} bytes`);
