#!/usr/bin/env node
import { processIo } from './io.js';
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2), processIo);
// `serve` keeps the process alive through its listening socket; every other command ends here.
if (code !== 0 || process.argv[2] !== 'serve') process.exitCode = code;
