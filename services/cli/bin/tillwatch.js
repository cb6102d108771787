#!/usr/bin/env node
// Launcher: registers tsx so the TypeScript sources run as they are (no build step to remember),
// then hands over to the CLI's entry point.
import { register } from 'tsx/esm/api';

register();
const { runMain } = await import('../src/main.ts');
await runMain(globalThis.process.argv.slice(2));
