/**
 * The fault test 8, bad input to a monitor on etcd: a wrong etcd URL (nothing listens),
 * TLS asked of an etcd that speaks plain gRPC (and the reverse), a store of another pgha (keys
 * of another program, another store than the one recorded), a store written by a newer pgha,
 * `--join` of an empty prefix and a second store at a taken prefix. Each: one clear line, a
 * non-zero exit, and nothing written (no key in etcd, no monitor file on disk).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_SCHEMA_VERSION } from '@pgha/monitor';
import { startEtcd, type TestEtcd } from './helpers/etcd.js';
import { expectOneLineError } from './helpers/cli.js';
import { endAllProcesses, makeTestDir, runPgha } from './helpers/processes.js';

let plain: TestEtcd;
let secure: TestEtcd;
let admin: Etcd3;
let dir: string;

beforeAll(async () => {
  dir = makeTestDir();
  [plain, secure] = await Promise.all([startEtcd(), startEtcd({ tls: true })]);
  admin = new Etcd3({ hosts: plain.members.map((m) => m.clientUrl) });
}, 60_000);

afterAll(async () => {
  admin?.close();
  await endAllProcesses();
});

/** Every key under `prefix` in the plain etcd. */
async function keysUnder(prefix: string): Promise<string[]> {
  return (await admin.getAll().prefix(`${prefix}/`).keys()).sort();
}

let n = 0;
/** `pgha monitor create` with `storeArgs`, in a new directory: its result and the monitor's files directory. */
async function create(storeArgs: string[]): Promise<{ r: { exitCode: number; stderr: string }; pghaDir: string; pgdata: string }> {
  const pgdata = join(dir, `m${++n}`, 'pgdata');
  const r = await runPgha(['monitor', 'create', '--pgdata', pgdata, '--listen', `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`, '--no-ssl', ...storeArgs]);
  return { r, pghaDir: `${pgdata}.pgha`, pgdata };
}

describe('pgha monitor create --store with bad input: one line, nothing written', () => {
  it('a wrong etcd URL: nothing listens there', async () => {
    const dead = await getPort({ host: '127.0.0.1' });
    const { r, pghaDir } = await create(['--store', `etcd://127.0.0.1:${dead}/pgha`]);
    expectOneLineError(r, new RegExp(`no etcd answers at 127\\.0\\.0\\.1:${dead} \\(store etcd://127\\.0\\.0\\.1:${dead}/pgha\\); check the --store URI`));
    expect(existsSync(pghaDir)).toBe(false);
  });

  it('TLS asked (--store-ca-file) of an etcd that speaks plain gRPC', async () => {
    const caFile = join(dir, 'some-ca.crt');
    writeFileSync(caFile, secure.ca!.certificatePem);
    const { r, pghaDir } = await create(['--store', plain.storeUri('/tls-asked'), '--store-ca-file', caFile]);
    expectOneLineError(r, /TLS was asked for etcd \(--store-ca-file\) but etcd at 127\.0\.0\.1:\d+ speaks plain gRPC without TLS; drop --store-ca-file/);
    expect(existsSync(pghaDir)).toBe(false);
    expect(await keysUnder('/tls-asked')).toEqual([]);
  });

  it('no TLS asked of an etcd that speaks TLS', async () => {
    const { r, pghaDir } = await create(['--store', secure.storeUri('/tls-missing')]);
    expectOneLineError(r, /etcd at 127\.0\.0\.1:\d+ speaks TLS, but no CA file was given; add --store-ca-file/);
    expect(existsSync(pghaDir)).toBe(false);
  });

  it('a prefix holding the keys of another program', async () => {
    await admin.put('/other-program/config').value('not pgha');
    for (const join of [[], ['--join']]) {
      const { r, pghaDir } = await create(['--store', plain.storeUri('/other-program'), ...join]);
      expectOneLineError(r, /the etcd prefix \/other-program of etcd:\/\/127\.0\.0\.1:\d+\/other-program holds keys, but no pgha store .*: it belongs to another program; give pgha a prefix of its own/);
      expect(existsSync(pghaDir)).toBe(false);
    }
    expect(await keysUnder('/other-program')).toEqual(['/other-program/config']);
  });

  it('a store written by a newer pgha', async () => {
    const meta = JSON.stringify({ schemaVersion: STORE_SCHEMA_VERSION + 1, storeId: 'future', createdAt: '2030-01-01T00:00:00Z', createdBy: 'future-host' });
    await admin.put('/newer/v1/meta').value(meta);
    const { r, pghaDir } = await create(['--store', plain.storeUri('/newer'), '--join']);
    expectOneLineError(r, new RegExp(`was written by a newer pgha \\(schema version ${STORE_SCHEMA_VERSION + 1}; this pgha reads version ${STORE_SCHEMA_VERSION} and older\\); upgrade pgha`));
    expect(existsSync(pghaDir)).toBe(false);
    expect(await keysUnder('/newer')).toEqual(['/newer/v1/meta']);
    expect((await admin.get('/newer/v1/meta').string())).toBe(meta);
  });

  it('--join of an empty prefix, and a new store where one is: refused', async () => {
    const joined = await create(['--store', plain.storeUri('/empty'), '--join']);
    expectOneLineError(joined.r, /there is no pgha store at etcd:\/\/127\.0\.0\.1:\d+\/empty \(the prefix is empty\); make it with: pgha monitor create --store/);
    expect(existsSync(joined.pghaDir)).toBe(false);
    expect(await keysUnder('/empty')).toEqual([]);

    const first = await create(['--store', plain.storeUri('/taken')]);
    expect(first.r.exitCode, first.r.stderr).toBe(0);
    const before = await admin.getAll().prefix('/taken/').exec();
    const second = await create(['--store', plain.storeUri('/taken')]);
    expectOneLineError(second.r, /the etcd prefix \/taken of etcd:\/\/127\.0\.0\.1:\d+\/taken holds a pgha store already \(id [0-9a-f-]+, made by .*\); add this monitor to it with --join/);
    expect(existsSync(second.pghaDir)).toBe(false);
    expect((await admin.getAll().prefix('/taken/').exec()).kvs.map((kv) => [kv.key.toString(), kv.mod_revision])).toEqual(before.kvs.map((kv) => [kv.key.toString(), kv.mod_revision]));
  });
});

describe('pgha monitor run on a store that is not its own: one line, nothing written', () => {
  it('refuses another store than the one monitor.json recorded', async () => {
    const a = await create(['--store', plain.storeUri('/store-a')]);
    const b = await create(['--store', plain.storeUri('/store-b')]);
    expect([a.r.exitCode, b.r.exitCode]).toEqual([0, 0]);
    // b's configuration pointed at a's store (a copied file, a wrong prefix).
    const configFile = join(b.pghaDir, 'monitor.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8')) as { store: { prefix: string; storeId: string } };
    writeFileSync(configFile, JSON.stringify({ ...config, store: { ...config.store, prefix: '/store-a' } }));
    const before = await admin.getAll().prefix('/store-a/').exec();
    const r = await runPgha(['monitor', 'run', '--pgdata', b.pgdata]);
    expectOneLineError(r, new RegExp(`the etcd store at etcd://127\\.0\\.0\\.1:\\d+/store-a is another store \\(id [0-9a-f-]+, made by .*\\) than this monitor's \\(id ${config.store.storeId}\\)`));
    expect((await admin.getAll().prefix('/store-a/').exec()).kvs.map((kv) => [kv.key.toString(), kv.mod_revision])).toEqual(before.kvs.map((kv) => [kv.key.toString(), kv.mod_revision]));
  });
});
