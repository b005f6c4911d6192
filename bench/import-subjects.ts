/**
 * What the cold-import scenario loads, per subject. Kept free of any package so that the worker can
 * read it before it has loaded anything the measurement would then find already cached.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export const IMPORT_SUBJECTS = ['ours-entry', 'ours-full', 'ours-bundle', 'baseline', 'ours-full-otel'] as const;
export type ImportSubject = (typeof IMPORT_SUBJECTS)[number];

/**
 * What the Functions host loads at start-up: every compiled function file (package.json `main` is
 * `dist/src/functions/*.js`), in a stable order. The SDKs load on the first request.
 */
function functionFiles(benchDir: string): string[] {
  const folder = join(benchDir, '..', 'src', 'functions');
  return readdirSync(folder)
    .filter((name) => name.endsWith('.js'))
    .sort()
    .map((name) => join(folder, name));
}

/** Absolute module paths or package names, for a worker compiled into `benchDir` (dist/bench). */
export function importModules(subject: ImportSubject, benchDir: string): string[] {
  switch (subject) {
    case 'ours-entry':
      return functionFiles(benchDir);
    case 'ours-full':
      // The same plus what the first request loads, so the comparison with the baseline is like for like.
      return [...functionFiles(benchDir), join(benchDir, '..', 'src', 'create-services.js')];
    case 'ours-bundle':
      // `npm run bundle`: the same, as the one minified file the deployment package can be.
      return [join(benchDir, '..', 'bundle', 'functions.js')];
    case 'baseline':
      return ['openai', '@azure/storage-blob'];
    case 'ours-full-otel':
      // Telemetry as OpenTelemetry metrics instead of a log line: what that library route adds.
      return [...importModules('ours-full', benchDir), join(benchDir, 'otel-metrics.js')];
  }
}

export function isImportSubject(value: unknown): value is ImportSubject {
  return typeof value === 'string' && (IMPORT_SUBJECTS as readonly string[]).includes(value);
}
