export * from './app.js';
export * from './monitor-config.js';
export * from './monitor-service.js';
export * from './store/db.js';
export * from './store/monitor-store.js';
export * from './driver/group-driver.js';
export * from './driver/goal-notifier.js';
export * from './prober/health-prober.js';
