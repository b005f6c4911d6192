import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { keptJobTokenSecret } from '../../local-host/job-token-secret';

describe('the job-token secret npm start keeps', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'job-token-secret-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('is made once, readable by its owner only, and the same on every later start', () => {
    const data = join(directory, '.azurite');
    const first = keptJobTokenSecret(data);
    const again = keptJobTokenSecret(data);

    expect(first.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(again).toEqual(first);
    expect(readFileSync(first.path, 'utf8').trim()).toBe(first.secret);
    if (process.platform !== 'win32') expect(statSync(first.path).mode & 0o777).toBe(0o600);
  });

  it('refuses a kept file that holds no usable secret', () => {
    writeFileSync(join(directory, 'job-token-secret'), 'short\n');
    expect(() => keptJobTokenSecret(directory)).toThrow(/holds no usable secret; delete it/);
  });
});
