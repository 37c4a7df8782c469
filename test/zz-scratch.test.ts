import { it, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { startEtcd } from './helpers/etcd.js';
import { endAllProcesses } from './helpers/processes.js';
afterAll(endAllProcesses);
const b = (s: string) => Buffer.from(s);
it('explores', async () => {
  const plain = await startEtcd();
  const secure = await startEtcd({ tls: true });
  const c = new Etcd3({ hosts: plain.members.map((m) => m.clientUrl), defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }) });
  await c.put('/p/a').value('1');
  const r = await c.kv.range({ key: b('/p/') , range_end: b('/p0') });
  console.log('range', r.header.revision, r.kvs.map((k) => [k.key.toString(), k.mod_revision, k.create_revision]));
  const rev = r.header.revision;
  await c.put('/p/b').value('2');
  const t1 = await c.kv.txn({ compare: [{ key: b('/p/'), range_end: b('/p0'), target: 'Mod', result: 'Less', mod_revision: String(Number(rev) + 1) }], success: [{ request_put: { key: b('/p/c'), value: b('3') } }] });
  console.log('range compare after insert (expect false)', t1.succeeded);
  const t2 = await c.kv.txn({ compare: [{ key: b('/p/zz'), target: 'Mod', result: 'Equal', mod_revision: '0' }], success: [{ request_put: { key: b('/p/zz'), value: b('3') } }] });
  console.log('absent mod==0 (expect true)', t2.succeeded, t2.header.revision);
  const old = await c.kv.range({ key: b('/p/'), range_end: b('/p0'), revision: rev });
  console.log('pinned', old.kvs.length);
  const w = await c.watch().prefix('/p/').withPreviousKV().create();
  w.on('put', (kv, prev) => console.log('watch put', kv.key.toString(), kv.mod_revision, prev?.value?.toString()));
  await c.put('/p/a').value('9');
  await new Promise((r) => setTimeout(r, 300));
  // TLS asked but plain server
  const wrong = new Etcd3({ hosts: plain.members.map((m) => m.clientUrl.replace('http:', 'https:')), credentials: { rootCertificate: readFileSync(secure.tls!.caFile) }, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }) });
  try { await wrong.get('x'); } catch (e) { console.log('tls->plain', (e as Error).constructor.name, (e as Error).message); }
  const wrong2 = new Etcd3({ hosts: secure.members.map((m) => m.clientUrl.replace('https:', 'http:')), defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }) });
  try { await wrong2.get('x'); } catch (e) { console.log('plain->tls', (e as Error).constructor.name, (e as Error).message); }
  const nobody = new Etcd3({ hosts: ['http://127.0.0.1:1'], defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 2000 }) });
  const t0 = Date.now();
  try { await nobody.get('x'); } catch (e) { console.log('refused', (e as Error).constructor.name, (e as Error).message, Date.now() - t0); }
  try { await nobody.get('x'); } catch (e) { console.log('refused2', (e as Error).constructor.name, (e as Error).message, Date.now() - t0); }
  const good = new Etcd3({ hosts: secure.members.map((m) => m.clientUrl), credentials: { rootCertificate: readFileSync(secure.tls!.caFile) } });
  console.log('tls ok', await good.get('x').string());
  try { await c.kv.txn({ compare: [], success: [{ request_put: { key: b('k'), value: b('1') } }, { request_put: { key: b('k'), value: b('2') } }] }); } catch (e) { console.log('dup', (e as Error).constructor.name, (e as Error).message); }
  c.close(); wrong.close(); wrong2.close(); nobody.close(); good.close(); await w.cancel();
}, 60000);
