export * from './base.js';
export * from './local-sql.js';
export * from './pg-connection.js';
export * from './pg-ctl.js';
export * from './system-identifier.js';
export * from './wal-end.js';
