/**
 * What the cold-import scenario loads, per subject. Kept free of any dependency so that the worker can
 * read it before it has loaded anything the measurement would then find already cached.
 */
export const IMPORT_SUBJECTS = ['ours-entry', 'ours-full', 'baseline'] as const;
export type ImportSubject = (typeof IMPORT_SUBJECTS)[number];

/** Module paths relative to `dist/bench/`, or package names. */
export const IMPORT_MODULES: Readonly<Record<ImportSubject, readonly string[]>> = {
  // What the Functions host loads at start-up: the function file only; the SDKs load on the first request.
  'ours-entry': ['../src/functions/images-generate.js'],
  // The same plus what the first request loads, so the comparison with the baseline is like for like.
  'ours-full': ['../src/functions/images-generate.js', '../src/create-services.js'],
  baseline: ['openai', '@azure/storage-blob'],
};

export function isImportSubject(value: unknown): value is ImportSubject {
  return typeof value === 'string' && (IMPORT_SUBJECTS as readonly string[]).includes(value);
}
