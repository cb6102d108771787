export * from './metrics.js';
export * from './logger.js';
export * from './ops-server.js';
