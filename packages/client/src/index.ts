export * from './monitor-client.js';
