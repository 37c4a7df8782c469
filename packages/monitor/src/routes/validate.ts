import type { z } from 'zod';
import { ValidationError } from '@pgha/shared';

/**
 * Parses `value` with `schema`.
 *
 * @param where - `body`, `params` or `query`: prefixes the field path in the error.
 * @throws ValidationError naming the first offending field (HTTP 400).
 */
export function validate<S extends z.ZodTypeAny>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = [where, ...issue.path].join('.');
  const message =
    issue.code === 'unrecognized_keys'
      ? `${where} has unknown field(s): ${issue.keys.join(', ')}`
      : issue.code === 'invalid_type' && issue.received === 'undefined'
        ? `${field} is required`
        : `${field}: ${issue.message}`;
  throw new ValidationError(message, { field, hint: 'see docs/api.md for the expected shape' });
}
