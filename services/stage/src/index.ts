export * from './stage.js';
export * from './stage-task.js';
export * from './metrics.js';
export * from './main.js';
