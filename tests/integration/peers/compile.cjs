// Compile Solidity with solc-js: standard-JSON input on stdin, standard-JSON output on stdout.
// Used by the integration tests (tests/integration/chain/solidity.py) so contracts are built at test time.
const solc = require('solc');
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => { process.stdout.write(solc.compile(input)); });
