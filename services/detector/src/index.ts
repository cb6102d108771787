export * from './detector.js';
export * from './detector-task.js';
export * from './main.js';
export * from './stream-clock.js';
export * from './live-rules.js';
