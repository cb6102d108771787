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
    files: ['packages/rules/src/**/*.ts'],
    rules: {
      // The rule engine is pure: no I/O, no clock. Enforced here, not just documented.
      'no-restricted-imports': ['error', { paths: ['kafkajs', '@clickhouse/client', 'chdb', 'fs', 'node:fs', 'net', 'node:net', 'http', 'node:http'] }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'Rules take the clock as input.' }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'process'],
    },
  },
);
