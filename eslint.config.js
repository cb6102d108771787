// One flat config for the whole monorepo; each workspace's `lint` script runs it on its own folder.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.stack/**', '.cache/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': ['error', { patterns: [{ group: ['../../*/src/*', '../../../*'], message: 'Import other workspaces through their package exports.' }] }],
    },
  },
  {
    // The console's browser code (plain ES modules, typed by JSDoc and checked by tsc with checkJs
    // and the DOM lib, which also catches undefined names). Pages are built from elements and text
    // nodes only: an HTML string could turn a field from the stream into markup.
    files: ['services/api/console/static/**/*.js'],
    rules: {
      'no-undef': 'off',
      'no-restricted-properties': ['error', ...['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'write', 'writeln', 'createContextualFragment', 'setHTMLUnsafe'].map((property) => ({ property, message: 'Build DOM nodes with dom.js (text only).' }))],
      'no-eval': 'error',
      'no-implied-eval': 'error',
    },
  },
  {
    files: ['packages/rules/src/**/*.ts'],
    rules: {
      // The rule engine is pure: no I/O, no clock. Enforced here, not just documented.
      'no-restricted-imports': ['error', { paths: ['kafkajs', '@clickhouse/client', 'chdb', 'fs', 'node:fs', 'net', 'node:net', 'http', 'node:http'] }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'Rules take the clock as input.' }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'process'],
    },
  },
);
