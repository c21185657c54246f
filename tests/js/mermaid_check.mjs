// node mermaid_check.mjs FILE...: one JSON line per file ({file, ok, type | error}); exit 1 if any fails.
// mermaid.parse in Node: DOMPurify needs a DOM only to sanitise labels, which parsing
// does not need, so its hooks are stubbed before mermaid loads.
import fs from "node:fs";
import DOMPurify from "dompurify";
DOMPurify.addHook = () => {};
DOMPurify.removeHook = () => {};
DOMPurify.removeHooks = () => {};
DOMPurify.sanitize = (text) => text;
const { default: mermaid } = await import("mermaid");
let failed = 0;
for (const f of process.argv.slice(2)) {
  try { const r = await mermaid.parse(fs.readFileSync(f, "utf8")); console.log(JSON.stringify({file: f, ok: true, type: r.diagramType})); }
  catch (e) { failed++; console.log(JSON.stringify({file: f, ok: false, error: String(e.message).slice(0, 500)})); }
}
process.exit(failed ? 1 : 0);
