import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { LATEST_RESULTS_FILE, REFERENCE_RESULTS_FILE } from '../../bench/results-files';

// `npm run bench` must not rewrite a tracked file: each run goes where git does not look, and the
// figures the docs quote stay in a committed file of their own.

const ROOT = join(__dirname, '..', '..');
const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
const probe = git('rev-parse', '--is-inside-work-tree');
const inWorkTree = probe.error === undefined && probe.stdout.trim() === 'true';
if (!inWorkTree && process.env['CI'] !== 'true') console.log('skipping the bench results tests: git or a git work tree is missing here');
// CI runs on a clone, where git must be there.
const describeWithGit = inWorkTree || process.env['CI'] === 'true' ? describe : describe.skip;

describeWithGit('bench results files', () => {
  it('writes each run to a file git neither tracks nor reports', () => {
    expect(git('ls-files', '--error-unmatch', LATEST_RESULTS_FILE).status).not.toBe(0);
    expect(git('check-ignore', '--quiet', LATEST_RESULTS_FILE).status).toBe(0);
  });

  it('keeps the reference run the docs quote under its own, committed name', () => {
    expect(git('ls-files', '--error-unmatch', REFERENCE_RESULTS_FILE).status).toBe(0);
  });
});
