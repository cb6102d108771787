export * from './sink.js';
export * from './flush.js';
export * from './main.js';
