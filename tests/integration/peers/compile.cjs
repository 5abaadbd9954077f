// Compile Solidity with solc-js: standard-JSON input on stdin, standard-JSON output on stdout.
// Usage: node compile.cjs [compiler-package]   (default "solc"; e.g. "solc-0.8.19", an npm alias
// of solc@0.8.19 for sources that pin that version). Run with this folder as the working directory.
// Used by tests/integration/chain/solidity.py and venues/onchain/devstack/solc.py.
const solc = require(process.argv[2] || 'solc');
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => { process.stdout.write(solc.compile(input)); });
