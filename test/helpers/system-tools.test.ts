import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

import { findSystemTool, pinnedToolPath, toolsRequired } from './system-tools';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'system-tools-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function program(path: string, mode = 0o755): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, mode);
  return path;
}

const nowhere = () => ({ path: join(dir, 'empty-bin'), home: join(dir, 'home'), toolsDir: join(dir, 'tools') });

describe('findSystemTool', () => {
  it('prefers the pinned copy infra/tools/install.mjs puts in .tools over the one on PATH', () => {
    const pinned = program(pinnedToolPath('bicep', join(dir, 'tools')));
    program(join(dir, 'bin', 'bicep'));

    expect(findSystemTool('bicep', { ...nowhere(), path: join(dir, 'bin') })).toEqual({ name: 'bicep', path: pinned });
  });

  it('finds a program on PATH, skipping folders where it is not executable', () => {
    program(join(dir, 'first', 'shellcheck'), 0o644);
    const second = program(join(dir, 'second', 'shellcheck'));

    const path = [join(dir, 'first'), join(dir, 'second')].join(delimiter);
    expect(findSystemTool('shellcheck', { ...nowhere(), path })).toEqual({ name: 'shellcheck', path: second });
  });

  it('finds the Bicep CLI `az bicep install` keeps in ~/.azure/bin', () => {
    const azBicep = program(join(dir, 'home', '.azure', 'bin', 'bicep'));
    expect(findSystemTool('bicep', nowhere())).toEqual({ name: 'bicep', path: azBicep });
  });

  it('reports a tool that is nowhere as missing', () => {
    for (const name of ['bicep', 'pwsh', 'shellcheck', 'dash'] as const) expect(findSystemTool(name, nowhere())).toBeUndefined();
  });
});

describe('toolsRequired', () => {
  it('requires the tools under CI and nowhere else', () => {
    expect(toolsRequired({ CI: 'true' })).toBe(true);
    expect(toolsRequired({ CI: '1' })).toBe(true);
    expect(toolsRequired({})).toBe(false);
    expect(toolsRequired({ CI: 'false' })).toBe(false);
    expect(toolsRequired({ CI: '' })).toBe(false);
  });
});
