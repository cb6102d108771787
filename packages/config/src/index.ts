export * from './env.js';
export * from './tillwatch.js';
