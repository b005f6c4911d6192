/**
 * The emulator CLI's settings from environment variables, checked in one pass so that a bad
 * configuration fails with one message that lists every problem.
 */
import { z } from 'zod';

import { MODEL_IDS, isModelId } from './models';
import type { QuotaSpec } from './quotas';
import type { EmulatorOptions } from './server';

export const DEFAULT_CLI_PORT = 8089;

// Unset and empty mean the same: a blank line in a .env file should not be an error.
const blankToUndefined = (value: unknown): unknown => (typeof value === 'string' && value.trim() === '' ? undefined : value);

const wholeNumber = (name: string, max: number) =>
  z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^\d+$/, `${name} must be a whole number`)
      .transform(Number)
      .refine((value) => value <= max, `${name} must be at most ${max}`)
      .optional(),
  );

const deploymentsSchema = z.preprocess(
  blankToUndefined,
  z
    .string()
    .transform((text, context) => {
      const deployments: Record<string, string> = {};
      const entries = text.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
      if (entries.length === 0) context.addIssue({ code: 'custom', message: 'EMULATOR_DEPLOYMENTS lists no deployment' });
      for (const entry of entries) {
        const match = /^([^=\s]+)\s*=\s*(\S+)$/.exec(entry);
        const name = match?.[1];
        const model = match?.[2];
        if (name === undefined || model === undefined) {
          context.addIssue({ code: 'custom', message: `EMULATOR_DEPLOYMENTS entry '${entry}' is not name=model` });
        } else if (!isModelId(model)) {
          context.addIssue({ code: 'custom', message: `EMULATOR_DEPLOYMENTS entry '${entry}' names unknown model '${model}' (known: ${MODEL_IDS.join(', ')})` });
        } else {
          deployments[name] = model;
        }
      }
      return deployments;
    })
    .optional(),
);

// `name=5ipm,other=10rpm`: images or requests per minute, as Azure states its image quotas.
const quotasSchema = z.preprocess(
  blankToUndefined,
  z
    .string()
    .transform((text, context) => {
      const quotas: Record<string, QuotaSpec> = {};
      for (const entry of text.split(',').map((part) => part.trim()).filter((part) => part.length > 0)) {
        const match = /^([^=\s]+)\s*=\s*(\d{1,7})\s*(ipm|rpm)$/i.exec(entry);
        const [name, amount, unit] = [match?.[1], Number(match?.[2]), match?.[3]?.toLowerCase()];
        if (name === undefined || !(amount >= 1)) {
          context.addIssue({ code: 'custom', message: `EMULATOR_QUOTAS entry '${entry}' is not name=Nipm or name=Nrpm (N ≥ 1)` });
        } else {
          quotas[name] = unit === 'ipm' ? { imagesPerMinute: amount } : { requestsPerMinute: amount };
        }
      }
      return quotas;
    })
    .optional(),
);

const environmentSchema = z.object({
  EMULATOR_HOST: z.preprocess(blankToUndefined, z.string().optional()),
  EMULATOR_PORT: wholeNumber('EMULATOR_PORT', 65_535),
  EMULATOR_API_KEY: z.preprocess(blankToUndefined, z.string().optional()),
  EMULATOR_DEPLOYMENTS: deploymentsSchema,
  EMULATOR_LATENCY_MS: wholeNumber('EMULATOR_LATENCY_MS', 3_600_000),
  EMULATOR_QUOTAS: quotasSchema,
  EMULATOR_MINUTE_MS: wholeNumber('EMULATOR_MINUTE_MS', 3_600_000),
  EMULATOR_IMAGE_DETAIL: z.preprocess(
    blankToUndefined,
    z.enum(['flat', 'noise'], { error: "EMULATOR_IMAGE_DETAIL must be 'flat' or 'noise'" }).optional(),
  ),
});

export class EmulatorConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`The emulator's environment is invalid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'EmulatorConfigError';
  }
}

/** Emulator options from EMULATOR_* variables; throws one EmulatorConfigError listing every bad variable. */
export function emulatorOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): EmulatorOptions {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    throw new EmulatorConfigError(
      parsed.error.issues.map((issue) => {
        const variable = issue.path.map(String).join('.');
        return issue.message.startsWith(variable) || issue.message.startsWith('EMULATOR_') ? issue.message : `${variable}: ${issue.message}`;
      }),
    );
  }
  const settings = parsed.data;
  return {
    host: settings.EMULATOR_HOST ?? '127.0.0.1',
    port: settings.EMULATOR_PORT ?? DEFAULT_CLI_PORT,
    ...(settings.EMULATOR_API_KEY === undefined ? {} : { apiKeys: [settings.EMULATOR_API_KEY] }),
    ...(settings.EMULATOR_DEPLOYMENTS === undefined ? {} : { deployments: settings.EMULATOR_DEPLOYMENTS }),
    ...(settings.EMULATOR_LATENCY_MS === undefined ? {} : { latencyMs: settings.EMULATOR_LATENCY_MS }),
    ...(settings.EMULATOR_IMAGE_DETAIL === undefined ? {} : { imageDetail: settings.EMULATOR_IMAGE_DETAIL }),
    ...(settings.EMULATOR_QUOTAS === undefined ? {} : { quotas: settings.EMULATOR_QUOTAS }),
    ...(settings.EMULATOR_MINUTE_MS === undefined ? {} : { minuteMs: settings.EMULATOR_MINUTE_MS }),
  };
}
