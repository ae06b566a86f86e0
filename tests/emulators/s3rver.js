#!/usr/bin/env node
// Runs the S3 emulator @20minutes/s3rver (installed by tests/setup/logs.sh in
// tests/.cache/s3rver; it verifies SigV4) for the logs plugin's tests, demo
// and benchmark, the way the Python emulators run:
//   node s3rver.js --host H --port P --directory DIR [--bucket NAME]... [--key AKID:SECRET]...
// prints "READY port=P" once listening. The package ships no CLI entry point
// in 4.0.4, so this starts the library.
'use strict';
const path = require('path');
const fs = require('fs');

const base = path.join(__dirname, '..', '.cache', 's3rver', 'node_modules', '@20minutes', 's3rver');
const S3rver = require(path.join(base, 'lib', 's3rver'));
const { DUMMY_ACCOUNT } = require(path.join(base, 'lib', 'models', 'account'));

const opts = { host: '127.0.0.1', port: 0, directory: null, buckets: [], keys: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const v = argv[i + 1];
  switch (argv[i]) {
    case '--host': opts.host = v; break;
    case '--port': opts.port = Number(v); break;
    case '--directory': opts.directory = v; break;
    case '--bucket': opts.buckets.push(v); break;
    case '--key': opts.keys.push(v); break;
    default: console.error('unknown option ' + argv[i]); process.exit(2);
  }
}
if (!opts.directory) {
  console.error('--directory is required');
  process.exit(2);
}
fs.mkdirSync(opts.directory, { recursive: true });
for (const k of opts.keys) {
  const [akid, secret] = k.split(':');
  DUMMY_ACCOUNT.createKeyPair(akid, secret);
}
const server = new S3rver({
  address: opts.host,
  port: opts.port,
  directory: opts.directory,
  silent: true,
  vhostBuckets: false,
  configureBuckets: opts.buckets.map((name) => ({ name, configs: [] })),
});
server.run().then(({ port }) => {
  console.log('READY port=' + port);
}, (err) => {
  console.error(err);
  process.exit(1);
});
