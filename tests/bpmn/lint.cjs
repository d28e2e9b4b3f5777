// Lints BPMN files with bpmnlint's recommended rules (bpmnlint from node_modules, installed by `make assets`).
// Usage: node tests/bpmn/lint.cjs FILE...; prints one JSON object: file -> [{id, rule, message, category}].
const fs = require('fs');
const { Linter } = require('bpmnlint');
const NodeResolver = require('bpmnlint/lib/resolver/node-resolver');
const { BpmnModdle } = require('bpmn-moddle');

async function lint(file) {
  const moddle = new BpmnModdle();
  const { rootElement, warnings } = await moddle.fromXML(fs.readFileSync(file, 'utf8'));
  const linter = new Linter({ config: { extends: 'bpmnlint:recommended' }, resolver: new NodeResolver() });
  const results = await linter.lint(rootElement);
  const out = warnings.map((w) => ({ id: '', rule: 'import', message: w.message, category: 'error' }));
  for (const [rule, reports] of Object.entries(results)) {
    for (const r of reports) out.push({ id: r.id, rule, message: r.message, category: r.category });
  }
  return out;
}

(async () => {
  const all = {};
  for (const file of process.argv.slice(2)) all[file] = await lint(file);
  process.stdout.write(JSON.stringify(all));
})().catch((err) => { console.error(err); process.exit(2); });
