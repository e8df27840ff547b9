// Prints one closing line over the jest result files given: "tests: N passed, N failed".
const results = process.argv.slice(2).map((file) => require(require('node:path').resolve(file)));
const sum = (key) => results.reduce((n, r) => n + r[key], 0);
console.log(`tests: ${sum('numPassedTests')} passed, ${sum('numFailedTests')} failed`);
