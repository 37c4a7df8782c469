import { describe, expect, it } from 'vitest';
import { mergeParameters, orderedValue, ownedParameterReason, parameterProblem, valueProblem, type ParameterDefinition } from '../src/postgres-parameters.js';
import { PostgresParametersUpdate } from '../src/protocol.js';

/** Rows of Postgres 15's pg_settings, as the monitor reads them. */
const ROWS: ParameterDefinition[] = [
  { name: 'work_mem', vartype: 'integer', unit: 'kB', minVal: '64', maxVal: '2147483647', enumvals: null, context: 'user' },
  { name: 'shared_buffers', vartype: 'integer', unit: '8kB', minVal: '16', maxVal: '1073741823', enumvals: null, context: 'postmaster' },
  { name: 'max_connections', vartype: 'integer', unit: null, minVal: '1', maxVal: '262143', enumvals: null, context: 'postmaster' },
  { name: 'log_min_duration_statement', vartype: 'integer', unit: 'ms', minVal: '-1', maxVal: '2147483647', enumvals: null, context: 'superuser' },
  { name: 'checkpoint_timeout', vartype: 'integer', unit: 's', minVal: '30', maxVal: '86400', enumvals: null, context: 'sighup' },
  { name: 'random_page_cost', vartype: 'real', unit: null, minVal: '0', maxVal: '1.79769e+308', enumvals: null, context: 'user' },
  { name: 'jit', vartype: 'bool', unit: null, minVal: null, maxVal: null, enumvals: null, context: 'user' },
  { name: 'log_statement', vartype: 'enum', unit: null, minVal: null, maxVal: null, enumvals: ['none', 'ddl', 'mod', 'all'], context: 'superuser' },
  { name: 'search_path', vartype: 'string', unit: null, minVal: null, maxVal: null, enumvals: null, context: 'user' },
  { name: 'block_size', vartype: 'integer', unit: null, minVal: '8192', maxVal: '8192', enumvals: null, context: 'internal' },
  { name: 'wal_level', vartype: 'enum', unit: null, minVal: null, maxVal: null, enumvals: ['minimal', 'replica', 'logical'], context: 'postmaster' },
];
const CATALOGUE = new Map(ROWS.map((r) => [r.name, r]));
const def = (name: string): ParameterDefinition => CATALOGUE.get(name)!;

describe('checking a value against pg_settings', () => {
  it('takes what Postgres takes: units of the right kind, fractions with a unit, hex, booleans, enums, strings', () => {
    for (const [name, value] of [
      ['work_mem', '8MB'], ['work_mem', '4096'], ['work_mem', '1.5GB'], ['work_mem', ' 64 kB '], ['shared_buffers', '128MB'], ['shared_buffers', '0x4000'],
      ['log_min_duration_statement', '-1'], ['log_min_duration_statement', '2s'], ['checkpoint_timeout', '5min'], ['checkpoint_timeout', '1h'],
      ['random_page_cost', '1.1'], ['random_page_cost', '2e0'], ['jit', 'off'], ['jit', 'TRUE'], ['jit', 'y'], ['log_statement', 'DDL'], ['search_path', '"$user", public'],
    ] as const) {
      expect(valueProblem(def(name), value), `${name} = ${value}`).toBeUndefined();
    }
  });

  it('refuses a wrong unit, a unit where none is taken, a fraction without a unit, words, and values out of range, saying what is accepted', () => {
    expect(valueProblem(def('work_mem'), '8XB')).toBe('"XB" is not a unit of work_mem: valid units are B, kB, MB, GB, TB');
    expect(valueProblem(def('work_mem'), '8mb')).toMatch(/"mb" is not a unit of work_mem/);
    expect(valueProblem(def('work_mem'), '8s')).toMatch(/"s" is not a unit of work_mem/);
    expect(valueProblem(def('max_connections'), '100kB')).toBe('"100kB" has a unit, but max_connections takes a plain number');
    expect(valueProblem(def('max_connections'), '100.5')).toBe('"100.5" is not a whole number');
    expect(valueProblem(def('max_connections'), 'many')).toBe('"many" is not a whole number');
    expect(valueProblem(def('work_mem'), '1kB')).toBe('1kB is below the minimum of work_mem, 64 (in kB)');
    expect(valueProblem(def('shared_buffers'), '100TB')).toBe('100TB is above the maximum of shared_buffers, 1073741823 (in 8kB)');
    expect(valueProblem(def('max_connections'), '0')).toBe('0 is below the minimum of max_connections, 1');
    expect(valueProblem(def('checkpoint_timeout'), '10s')).toMatch(/below the minimum of checkpoint_timeout, 30 \(in s\)/);
    expect(valueProblem(def('jit'), 'maybe')).toBe('"maybe" is not a boolean: use on or off');
    expect(valueProblem(def('log_statement'), 'some')).toBe('"some" is not a value of log_statement: use one of none, ddl, mod, all');
  });

  it("refuses pgha's own parameters with the reason, unknown and fixed ones, and wal_level minimal; takes an extension's", () => {
    expect(parameterProblem(CATALOGUE, 'port', '5433')).toMatch(/^port is set by pgha: the node registered its port/);
    expect(parameterProblem(CATALOGUE, 'synchronous_standby_names', '*')).toMatch(/^synchronous_standby_names is set by pgha: the monitor computes it/);
    expect(parameterProblem(CATALOGUE, 'ssl_ciphers', 'HIGH')).toMatch(/^ssl_ciphers is set by pgha: pgha configures TLS/);
    expect(parameterProblem(CATALOGUE, 'primary_conninfo', '')).toMatch(/set by pgha/);
    expect(parameterProblem(CATALOGUE, 'hba_file', '/x')).toMatch(/set by pgha/);
    expect(parameterProblem(CATALOGUE, 'work_mme', '8MB')).toBe('work_mme is not a Postgres parameter (not in pg_settings of the primary)');
    expect(parameterProblem(CATALOGUE, 'block_size', '8192')).toMatch(/cannot be changed: it is fixed/);
    expect(parameterProblem(CATALOGUE, 'wal_level', 'minimal')).toMatch(/use replica or logical/);
    expect(parameterProblem(CATALOGUE, 'wal_level', 'logical')).toBeUndefined();
    expect(parameterProblem(CATALOGUE, 'pg_stat_statements.max', '5000')).toBeUndefined();
    expect(parameterProblem(CATALOGUE, 'work_mem', '8MB')).toBeUndefined();
    expect(ownedParameterReason('work_mem')).toBeUndefined();
  });

  it('takes names case-insensitively (lower-cased), and refuses a name twice or a value on two lines in a request', () => {
    expect(PostgresParametersUpdate.parse({ parameters: [{ name: 'Work_Mem', value: '8MB' }] }).parameters[0]!.name).toBe('work_mem');
    expect(PostgresParametersUpdate.safeParse({ parameters: [{ name: 'work_mem', value: '8MB' }, { name: 'WORK_MEM', value: '4MB' }] }).success).toBe(false);
    expect(PostgresParametersUpdate.safeParse({ parameters: [{ name: 'work_mem', value: '8MB\nport = 1' }] }).success).toBe(false);
    expect(PostgresParametersUpdate.safeParse({ parameters: [{ name: "work_mem = 1; port", value: '8MB' }] }).success).toBe(false);
    expect(PostgresParametersUpdate.safeParse({ parameters: [] }).success).toBe(false);
  });
});

describe("a node's parameters", () => {
  it("are the formation's with the node's own over them, by name", () => {
    expect(mergeParameters([{ name: 'work_mem', value: '8MB' }, { name: 'jit', value: 'off' }], [{ name: 'work_mem', value: '16MB' }])).toEqual([
      { name: 'jit', value: 'off' },
      { name: 'work_mem', value: '16MB' },
    ]);
  });
});

describe('the order of the parameters a standby must not run lower than its primary', () => {
  const primary = (value: string | null) => ({ primary: true, value });
  const standby = (value: string | null) => ({ primary: false, value });

  it('raises on the standbys first: the primary gets the new value once every standby runs with it', () => {
    expect(orderedValue('200', standby('100'), [primary('100')])).toBe('200');
    expect(orderedValue('200', primary('100'), [standby('100'), standby('100')])).toBe('100');
    expect(orderedValue('200', primary('100'), [standby('200'), standby('100')])).toBe('100');
    expect(orderedValue('200', primary('100'), [standby('200'), standby('150')])).toBe('150');
    expect(orderedValue('200', primary('100'), [standby('200'), standby('200')])).toBe('200');
  });

  it('lowers on the primary first: a standby gets the new value once the primary runs with it', () => {
    expect(orderedValue('50', primary('100'), [standby('100')])).toBe('50');
    expect(orderedValue('50', standby('100'), [primary('100')])).toBe('100');
    expect(orderedValue('50', standby('100'), [primary('50')])).toBe('50');
  });

  it('without a report of the others (an older keeper, Postgres down) or without standbys, the value wanted', () => {
    expect(orderedValue('200', primary('100'), [])).toBe('200');
    expect(orderedValue('200', primary(null), [standby(null)])).toBe('200');
    expect(orderedValue('50', standby('100'), [primary(null)])).toBe('50');
  });

  it('keeps every standby at or above its primary through any order of restarts (each node restarts with what it was given)', () => {
    // Two standbys and a primary at 100; the formation asks 300, then 50: restart nodes one at a time in every order, twice.
    for (const wanted of ['300', '50']) {
      const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
      for (const order of orders) {
        const running = ['100', '100', '100']; // node 0 is the primary
        for (const round of [1, 2, 3]) {
          for (const i of order) {
            const self = { primary: i === 0, value: running[i]! };
            const others = running.map((v, j) => ({ primary: j === 0, value: v })).filter((_, j) => j !== i);
            running[i] = orderedValue(wanted, self, others);
            expect(Math.min(Number(running[1]), Number(running[2])), `round ${round}, order ${order.join('')}`).toBeGreaterThanOrEqual(Number(running[0]));
          }
        }
        expect(running).toEqual([wanted, wanted, wanted]);
      }
    }
  });
});
