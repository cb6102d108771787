export * from './sink.js';
export * from './main.js';
