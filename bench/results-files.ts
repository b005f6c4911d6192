/** Where `npm run bench` writes each run, relative to the project: ignored by git, so a run never changes the checkout. */
export const LATEST_RESULTS_FILE = 'bench/results/latest.json';

/** The run bench/README.md quotes, committed under its own name (copy a run there to update it). */
export const REFERENCE_RESULTS_FILE = 'bench/results/reference.json';
